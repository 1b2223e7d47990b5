"""The command of every task of the compiled KFP pipeline: TFX's KFP v2 container
entrypoint (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_run_executor.py),
handed the part of the ExecutorInput that a TFX executor understands.

TFX's entrypoint was written for Vertex AI Pipelines. The open-source KFP
backend (github.com/kubeflow/pipelines, backend/src/v2; releases 2.0 to 2.17
read) sends an ExecutorInput that differs in three ways, each of which fails a
task in TFX's entrypoint:

- Input artifacts have an empty type. The driver reads them back from MLMD
  without their schema (metadata/client.go GetOutputArtifactsByExecutionId:
  `Schema: ""`, "TODO(Bobgy): figure out how to get schema"; ToRuntimeArtifact
  sets `type.instanceSchema` to it), and TFX's `_retrieve_class_path` cannot
  load an empty schema (tensorflow/tfx#7768). The type comes back from the
  component's input definitions, which TFX's compiler already passes as
  --json_serialized_inputs_spec_args.
- An output the component does not declare: `executor-logs` of type
  `system.Artifact` (driver/driver.go provisionOutputs, when the driver runs
  with --publish_logs=true, the default since 2.5). The launcher writes and
  records it itself (component/launcher_v2.go getLogWriter,
  uploadOutputArtifacts); TFX would try to import `system.Artifact`. Only the
  outputs in --json_serialized_outputs_spec_args (the component's output
  definitions, added by pipeline/kubeflow_runner.py) reach the executor.
- Input parameters the component does not declare, such as the data
  fingerprint that keys ImageExampleGen's cache (pipeline/kubeflow_cache.py):
  TFX would pass them to the executor as execution properties.

It also refuses, with the reason, output URIs that tf.io.gfile cannot write,
such as the backend's default root `minio://mlpipeline/v2/artifacts`
(config/env.go), before an executor fails on them half-way.
"""
import argparse
import json
from typing import List, Tuple

from absl import app
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2
from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_run_executor

OUTPUTS_SPEC_FLAG = "--json_serialized_outputs_spec_args"


class ExecutorInputError(ValueError):
    """The ExecutorInput cannot be handed to the component as it is."""


def _has_type(artifact_type: pipeline_spec_pb2.ArtifactTypeSchema) -> bool:
    kind = artifact_type.WhichOneof("kind")
    return kind is not None and bool(getattr(artifact_type, kind))


def check_output_uris(executor_input: pipeline_spec_pb2.ExecutorInput) -> None:
    """Raises ExecutorInputError for an output URI whose scheme tf.io.gfile lacks."""
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    for name, artifact_list in executor_input.outputs.artifacts.items():
        for artifact in artifact_list.artifacts:
            try:
                tf.io.gfile.exists(artifact.uri)
            except tf.errors.UnimplementedError as error:
                scheme = artifact.uri.split("://", 1)[0]
                raise ExecutorInputError(
                    f"output {name!r} goes to {artifact.uri}, under a pipeline root that TFX cannot "
                    f"write: tf.io.gfile has no {scheme}:// file system ({error.message}). Give the run "
                    "a gs:// pipeline root (`catsdogs compile --pipeline-root gs://BUCKET/PATH`, or "
                    "`catsdogs submit --pipeline-root`, or the KFP UI's run form).") from None


def adapt_executor_input(executor_input: pipeline_spec_pb2.ExecutorInput,
                         inputs_spec: pipeline_spec_pb2.ComponentInputsSpec,
                         outputs_spec: pipeline_spec_pb2.ComponentOutputsSpec) -> None:
    """Fills untyped input artifacts from the input definitions and drops the
    outputs and input parameters the component does not declare (in place)."""
    for name, artifact_list in executor_input.inputs.artifacts.items():
        if name not in inputs_spec.artifacts:
            raise ExecutorInputError(f"input artifact {name!r} is not one of the component's inputs "
                                     f"({', '.join(sorted(inputs_spec.artifacts)) or 'none'})")
        declared = inputs_spec.artifacts[name].artifact_type
        for artifact in artifact_list.artifacts:
            if not _has_type(artifact.type):
                artifact.type.CopyFrom(declared)
    for name in list(executor_input.outputs.artifacts):
        if name not in outputs_spec.artifacts:
            del executor_input.outputs.artifacts[name]
    for name in list(executor_input.inputs.parameter_values):
        if name not in inputs_spec.parameters:
            del executor_input.inputs.parameter_values[name]


def _parse_flags(argv: List[str]) -> Tuple[argparse.Namespace, List[str]]:
    args, beam_args = kubeflow_v2_run_executor._parse_flags(argv)  # pylint: disable=protected-access
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument(OUTPUTS_SPEC_FLAG, dest="json_serialized_outputs_spec_args", required=True)
    outputs, beam_args = parser.parse_known_args(beam_args)
    args.json_serialized_outputs_spec_args = outputs.json_serialized_outputs_spec_args
    return args, beam_args


def main(parsed_argv: Tuple[argparse.Namespace, List[str]]) -> None:
    args, beam_args = parsed_argv
    executor_input = json_format.Parse(args.json_serialized_invocation_args,
                                       pipeline_spec_pb2.ExecutorInput(), ignore_unknown_fields=True)
    inputs_spec = json_format.Parse(args.json_serialized_inputs_spec_args or "{}",
                                    pipeline_spec_pb2.ComponentInputsSpec())
    outputs_spec = json_format.Parse(args.json_serialized_outputs_spec_args,
                                     pipeline_spec_pb2.ComponentOutputsSpec())
    adapt_executor_input(executor_input, inputs_spec, outputs_spec)
    check_output_uris(executor_input)
    args.json_serialized_invocation_args = json.dumps(json_format.MessageToDict(executor_input))
    kubeflow_v2_run_executor.main((args, beam_args))


if __name__ == "__main__":
    app.run(main, flags_parser=_parse_flags)
