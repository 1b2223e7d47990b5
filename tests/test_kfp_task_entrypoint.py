"""pipeline/kfp_task_entrypoint.py on the ExecutorInput pieces the open-source
KFP backend sends (the whole task run is in tests/test_kfp_backend_tasks.py)."""
import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import kfp_task_entrypoint

EXAMPLES_SCHEMA = "title: tfx.Examples\ntype: object\n"
STATISTICS_SCHEMA = "title: tfx.ExampleStatistics\ntype: object\n"


def _specs():
    inputs = json_format.ParseDict({
        "artifacts": {"examples": {"artifactType": {"instanceSchema": EXAMPLES_SCHEMA}}},
        "parameters": {"exclude_splits": {"parameterType": "STRING"}}},
        pipeline_spec_pb2.ComponentInputsSpec())
    outputs = json_format.ParseDict({
        "artifacts": {"statistics": {"artifactType": {"instanceSchema": STATISTICS_SCHEMA}}}},
        pipeline_spec_pb2.ComponentOutputsSpec())
    return inputs, outputs


def _backend_input(tmp_path, input_type=None):
    """StatisticsGen's ExecutorInput as backend/src/v2/driver builds it."""
    return json_format.ParseDict({
        "inputs": {
            "parameterValues": {"exclude_splits": "[]", "data_fingerprint": "train:3;sha256:ab"},
            "artifacts": {"examples": {"artifacts": [
                {"name": "17", "uri": str(tmp_path / "examples"), "type": input_type or {"instanceSchema": ""},
                 "metadata": {"split_names": "[\"train\"]", "display_name": "examples"}}]}}},
        "outputs": {
            "artifacts": {
                "statistics": {"artifacts": [{"name": "statistics", "uri": str(tmp_path / "statistics"),
                                              "type": {"instanceSchema": STATISTICS_SCHEMA}}]},
                "executor-logs": {"artifacts": [{"name": "executor-logs", "uri": str(tmp_path / "logs"),
                                                 "type": {"schemaTitle": "system.Artifact"}}]}},
            "outputFile": str(tmp_path / "output_metadata.json")}},
        pipeline_spec_pb2.ExecutorInput())


def test_untyped_inputs_get_their_declared_type(tmp_path):
    executor_input = _backend_input(tmp_path)
    kfp_task_entrypoint.adapt_executor_input(executor_input, *_specs())
    artifact = executor_input.inputs.artifacts["examples"].artifacts[0]
    assert artifact.type.instance_schema == EXAMPLES_SCHEMA
    assert artifact.name == "17" and artifact.metadata["split_names"] == "[\"train\"]"


def test_a_type_the_backend_did_send_is_kept(tmp_path):
    executor_input = _backend_input(tmp_path, input_type={"schemaTitle": "tfx.Examples"})
    kfp_task_entrypoint.adapt_executor_input(executor_input, *_specs())
    assert executor_input.inputs.artifacts["examples"].artifacts[0].type.schema_title == "tfx.Examples"


def test_undeclared_outputs_and_parameters_are_left_out(tmp_path):
    executor_input = _backend_input(tmp_path)
    kfp_task_entrypoint.adapt_executor_input(executor_input, *_specs())
    assert set(executor_input.outputs.artifacts) == {"statistics"}
    assert set(executor_input.inputs.parameter_values) == {"exclude_splits"}


def test_an_input_the_component_does_not_have_is_named(tmp_path):
    executor_input = _backend_input(tmp_path)
    executor_input.inputs.artifacts["schema"].artifacts.add(uri=str(tmp_path / "schema"))
    with pytest.raises(kfp_task_entrypoint.ExecutorInputError, match="'schema' is not one of .*examples"):
        kfp_task_entrypoint.adapt_executor_input(executor_input, *_specs())


def test_an_output_under_the_backends_default_minio_root_is_refused_with_the_reason(tmp_path):
    executor_input = _backend_input(tmp_path)
    executor_input.outputs.artifacts["statistics"].artifacts[0].uri = \
        "minio://mlpipeline/v2/artifacts/cats-vs-dogs/StatisticsGen/1234/statistics"
    with pytest.raises(kfp_task_entrypoint.ExecutorInputError,
                       match=r"TFX cannot write: tf.io.gfile has no minio:// file system.*gs://"):
        kfp_task_entrypoint.check_output_uris(executor_input)


def test_local_and_gcs_style_outputs_pass_the_check(tmp_path):
    executor_input = _backend_input(tmp_path)
    kfp_task_entrypoint.check_output_uris(executor_input)  # raises on failure
    assert not (tmp_path / "statistics").exists()  # the check writes nothing
