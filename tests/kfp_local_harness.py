"""Runs a compiled KFP v2 PipelineSpec task by task in Docker containers with
the KFP SDK's own local orchestrator (kfp.local, DockerRunner).

kfp.local is not a KFP backend; the workarounds below cover where it differs
from one, each naming the kfp 2.16 source it works around. Nothing in the
product depends on them: a real backend behaves as the product expects.
"""
import contextlib
import dataclasses
import json
import os
import time
from typing import Dict, Iterator, List, Tuple

from google.protobuf import json_format
from kfp.local import docker_task_handler, executor_input_utils, executor_output_utils, pipeline_orchestrator
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import kubeflow_package

COMPONENT_NAME_PREFIX = "comp-"


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """One container: the task it ran, its exit code and wall time, its log file."""
    task: str
    exit_code: int
    seconds: float
    log_path: str


def load_pipeline_spec(package_path: str) -> Tuple[pipeline_spec_pb2.PipelineSpec, Dict[str, object]]:
    """The PipelineSpec of a compiled package and its run parameters' defaults (a
    run started from the KFP UI starts with them). kfp.local ignores the package's
    second document, the Kubernetes platform spec."""
    package = kubeflow_package.load_package(package_path)
    spec = json_format.ParseDict(package.pipeline_spec, pipeline_spec_pb2.PipelineSpec())
    return spec, package.parameter_defaults()


def _task_of(command: List[str]) -> str:
    """The task a container runs, from the executor input kfp.local put on its
    command line: its outputs live in <pipeline run>/<task>/."""
    executor_input = json.loads(command[command.index("--json_serialized_invocation_args") + 1])
    return os.path.basename(os.path.dirname(executor_input["outputs"]["outputFile"]))


@contextlib.contextmanager
def kfp_local_workarounds(log_dir: str) -> Iterator[List[TaskRun]]:
    """Patches kfp.local for the duration; yields the list of containers run."""
    runs: List[TaskRun] = []
    originals = (executor_output_utils.runtime_artifact_to_dsl_artifact,
                 executor_input_utils.dsl_artifact_to_artifact_list,
                 executor_input_utils.get_local_task_resource_name,
                 docker_task_handler.run_docker_container)

    # kfp/dsl/executor.py create_artifact_instance keeps only `schemaTitle` of an
    # output's type and kfp/local/executor_input_utils.py dsl_artifact_to_artifact_list
    # rebuilds the type from it, so a downstream task receives TFX's artifacts
    # (typed by instanceSchema) as `system.Artifact`, which TFX cannot import. A KFP
    # backend passes the type through; so does this.
    def keep_type(runtime_artifact):
        artifact = originals[0](runtime_artifact)
        artifact.kfp_local_artifact_type = pipeline_spec_pb2.ArtifactTypeSchema()
        artifact.kfp_local_artifact_type.CopyFrom(runtime_artifact.type)
        return artifact

    def with_type(artifact):
        artifact_list = originals[1](artifact)
        artifact_type = getattr(artifact, "kfp_local_artifact_type", None)
        if artifact_type is not None:
            for runtime_artifact in artifact_list.artifacts:
                runtime_artifact.type.CopyFrom(artifact_type)
        return artifact_list

    # kfp/local/executor_input_utils.py get_local_task_resource_name cuts 5
    # characters off every component name, assuming KFP's `comp-` prefix, which
    # TFX's compiler does not use (a task's folder would be `sticsGen`).
    def task_folder(component_name: str) -> str:
        if component_name.startswith(COMPONENT_NAME_PREFIX):
            return component_name[len(COMPONENT_NAME_PREFIX):]
        return component_name

    # kfp/local/docker_task_handler.py run_docker_container starts containers with
    # auto_remove=True and reports exit code 0 when the container is already gone
    # (NotFound), so a failed task can pass. Keep the container until its exit
    # code is read; keep each task's log in a file; time each task.
    def run_container(client, image, command, volumes, **run_args) -> int:
        task = _task_of(command)
        log_path = os.path.join(log_dir, f"{task}.log")
        started = time.monotonic()
        container = client.containers.run(
            image=docker_task_handler.add_latest_tag_if_not_present(image), command=command,
            detach=True, volumes=volumes, **run_args)
        try:
            with open(log_path, "wb") as log:
                for chunk in container.logs(stream=True, follow=True):
                    log.write(chunk)
            exit_code = container.wait()["StatusCode"]
        finally:
            container.remove(force=True)
        runs.append(TaskRun(task, exit_code, time.monotonic() - started, log_path))
        print(f"[kfp.local] {task}: exit {exit_code} after {runs[-1].seconds:.1f} s "
              f"(log: {log_path})", flush=True)
        return exit_code

    os.makedirs(log_dir, exist_ok=True)
    executor_output_utils.runtime_artifact_to_dsl_artifact = keep_type
    executor_input_utils.dsl_artifact_to_artifact_list = with_type
    executor_input_utils.get_local_task_resource_name = task_folder
    docker_task_handler.run_docker_container = run_container
    try:
        yield runs
    finally:
        (executor_output_utils.runtime_artifact_to_dsl_artifact,
         executor_input_utils.dsl_artifact_to_artifact_list,
         executor_input_utils.get_local_task_resource_name,
         docker_task_handler.run_docker_container) = originals


def run_pipeline(spec: pipeline_spec_pb2.PipelineSpec, arguments: Dict[str, object],
                 log_dir: str) -> List[TaskRun]:
    """Runs every task (kfp.local.init must have chosen the DockerRunner and the
    pipeline root); raises RuntimeError naming the first failed task."""
    with kfp_local_workarounds(log_dir) as runs:
        pipeline_orchestrator.run_local_pipeline(spec, arguments)
    return runs
