"""ImageExampleGen's driver on KFP v2: fingerprints a folder holding a broken
symbolic link and a non-UTF-8 file name, where TFX's own KFP driver fails."""
import json
import os

import pytest
import tensorflow as tf
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2 import compiler_utils
from tfx.orchestration.kubeflow.v2.file_based_example_gen import driver as tfx_kfp_driver
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts

from components.image_example_gen import kfp_driver

SAMPLE_DOG = os.path.join(os.path.dirname(__file__), "..", "data", "sample", "test", "dogs",
                          "dog.1500.jpg")


def _driver_args(input_base: str, output_file: str):
    """The driver's command-line arguments as a KFP backend fills them in."""
    executor_input = pipeline_spec_pb2.ExecutorInput()
    executor_input.outputs.output_file = output_file
    input_config = example_gen_pb2.Input(splits=[
        example_gen_pb2.Input.Split(name=split, pattern=f"{split}/*/*")
        for split in ("train", "validation", "test")])
    parameters = executor_input.inputs.parameter_values
    parameters["input_base"].string_value = input_base
    parameters["input_config"].string_value = json_format.MessageToJson(input_config)
    parameters["output_config"].string_value = "{}"
    executor_input.outputs.artifacts["examples"].artifacts.append(pipeline_spec_pb2.RuntimeArtifact(
        uri=os.path.join(os.path.dirname(output_file), "examples"),
        type=pipeline_spec_pb2.ArtifactTypeSchema(
            instance_schema=compiler_utils.get_artifact_schema(standard_artifacts.Examples))))
    inputs_spec = pipeline_spec_pb2.ComponentInputsSpec()
    inputs_spec.parameters["input_config"].parameter_type = pipeline_spec_pb2.ParameterType.STRING
    return tfx_kfp_driver._parse_flags([  # pylint: disable=protected-access
        "--json_serialized_invocation_args", json_format.MessageToJson(executor_input),
        "--json_serialized_inputs_spec_args", json_format.MessageToJson(inputs_spec)])


@pytest.fixture
def data_with_odd_names(tmp_path):
    with open(SAMPLE_DOG, "rb") as f:
        jpeg = f.read()
    for split in ("train", "validation", "test"):
        for label in ("cats", "dogs"):
            folder = tmp_path / "data" / split / label
            folder.mkdir(parents=True)
            (folder / "ok.jpg").write_bytes(jpeg)
    train_dogs = os.fsencode(str(tmp_path / "data" / "train" / "dogs"))
    os.symlink(os.fsencode(str(tmp_path / "gone.jpg")), os.path.join(train_dogs, b"broken.jpg"))
    with open(os.path.join(train_dogs, b"caf\xe9.jpg"), "wb") as f:
        f.write(jpeg)
    return str(tmp_path / "data")


def test_tfx_kfp_driver_fails_on_such_a_folder(data_with_odd_names, tmp_path):
    with pytest.raises((tf.errors.NotFoundError, UnicodeDecodeError)):
        tfx_kfp_driver.main(_driver_args(data_with_odd_names, str(tmp_path / "tfx" / "out.json")))


def test_image_example_gen_kfp_driver_fingerprints_it(data_with_odd_names, tmp_path):
    output_file = str(tmp_path / "ours" / "out.json")
    kfp_driver.main(_driver_args(data_with_odd_names, output_file))
    with open(output_file) as f:
        output = json.load(f)
    fingerprint = output["parameterValues"]["input_fingerprint"]
    assert "split:train,num_files:4," in fingerprint  # 2 images, the broken link, the odd name
    assert "split:test,num_files:2," in fingerprint
    assert output["artifacts"]["examples"]["artifacts"][0]["uri"].endswith("examples")
