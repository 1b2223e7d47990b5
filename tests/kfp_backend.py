"""A stand-in for the open-source KFP v2 backend's driver and launcher: runs a
compiled PipelineSpec task by task and hands each task's command the
ExecutorInput that backend builds, then records outputs and cache entries the
way it does. No KFP backend can run here (no cluster); what this reproduces is
read from github.com/kubeflow/pipelines, backend/src/v2 (commit 7b70c7b, the
2.17 line), and each emulated behaviour names the file it follows. It repairs
nothing: a task that would fail on that backend fails here.

What it does not reproduce, because nothing here can host it:
- The bucket. The backend takes gs://, s3://, minio:// or mem:// pipeline
  roots only (objectstore/config.go); here the root is a local folder mounted
  at the same path into every container, which to TFX's tf.io.gfile is the
  same kind of path as gs://. With a local root the launcher copies no input
  down and no output up (launcher_v2.go retrieveArtifactPath finds no
  scheme), exactly as on a cluster for TFX tasks, which read and write the
  bucket themselves.
- MLMD and the cache table of the API server: a JSON file in the state folder
  keeps artifacts, executions and cache entries across runs, as the backend's
  databases do.
- Argo: tasks run one at a time in topological order, not in parallel.

Task commands run in Docker containers of the spec's image (`make test-kfp`)
or, for the fast tests, as processes of this environment's Python.
"""
import dataclasses
import hashlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from typing import Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import yaml
from google.protobuf import json_format, struct_pb2
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import kubeflow_package

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXECUTOR_LOGS = "executor-logs"
# driver/driver.go provisionOutputs: output parameters are files under
# /tmp/kfp/outputs; the executor output file falls back to the launcher's
# OutputMetadataFilepath (component/launcher_v2.go) for a root that is not a bucket.
PARAMETER_OUTPUT_DIR = "/tmp/kfp/outputs"
OUTPUT_METADATA_FILE = "/tmp/kfp_outputs/output_metadata.json"
PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


class TaskFailed(RuntimeError):
    def __init__(self, task: str, exit_code: int, log_path: str):
        with open(log_path, errors="replace") as log:
            tail = log.read()[-3000:]
        super().__init__(f"task {task} failed with exit code {exit_code} (log: {log_path}):\n{tail}")
        self.task, self.exit_code, self.log_path = task, exit_code, log_path


@dataclasses.dataclass(frozen=True)
class TaskRun:
    """One task of a run: executed (exit code and log of the last attempt, wall time
    of all attempts, every attempt's exit code) or served from the cache."""
    task: str
    exit_code: int
    seconds: float
    log_path: Optional[str]
    cached: bool
    executor_input: dict
    attempts: Sequence[int] = ()


@dataclasses.dataclass
class KillOnce:
    """A lost pod: SIGKILL the task's first attempt when its log shows `line_pattern`."""
    line_pattern: str
    fired: bool = False

    def __call__(self, line: bytes) -> bool:
        if not self.fired and re.search(self.line_pattern.encode(), line):
            self.fired = True
            return True
        return False


# ---- MLMD values: metadata/converter.go -----------------------------------------------------

def struct_value_to_mlmd(value: struct_pb2.Value) -> dict:
    """StructValueToMLMDValue: strings stay, numbers become doubles, booleans
    ints, lists and structs are wrapped as {"list": ...} / {"struct": ...};
    null is refused ("unknown/unsupported value type")."""
    kind = value.WhichOneof("kind")
    if kind == "string_value":
        return {"string_value": value.string_value}
    if kind == "number_value":
        return {"double_value": value.number_value}
    if kind == "bool_value":
        return {"int_value": int(value.bool_value)}
    if kind == "list_value":
        return {"struct_value": {"list": json_format.MessageToDict(value.list_value)}}
    if kind == "struct_value":
        return {"struct_value": {"struct": json_format.MessageToDict(value.struct_value)}}
    raise ValueError(f"unknown/unsupported value type {kind} (metadata/converter.go)")


def mlmd_to_struct_value(value: Mapping) -> object:
    """toRuntimeArtifact's propertiesToMetadata: ints and doubles come back as
    numbers, structs as they are stored (a list stays wrapped in {"list": ...})."""
    (kind, stored), = value.items()
    if kind == "int_value":
        return float(stored)
    return stored


# ---- the backend's databases ----------------------------------------------------------------

class BackendState:
    """MLMD artifacts and executions and the cache table, kept in a JSON file."""

    def __init__(self, folder: str):
        os.makedirs(folder, exist_ok=True)
        self.path = os.path.join(folder, "backend_state.json")
        self.data = {"artifacts": {}, "executions": {}, "cache": {}}
        if os.path.exists(self.path):
            with open(self.path) as f:
                self.data = json.load(f)

    def save(self) -> None:
        with open(self.path, "w") as f:
            json.dump(self.data, f, indent=1)

    def _next_id(self, table: str) -> int:
        return len(self.data[table]) + 1

    def record_artifact(self, output_name: str, artifact: pipeline_spec_pb2.RuntimeArtifact) -> int:
        """metadata/client.go RecordArtifact: the type is the schema's title, the
        metadata becomes custom properties, display_name and store_session_info
        are added when absent (the session info of the bucket; none here)."""
        schema = _artifact_schema(artifact.type)
        title = (yaml.safe_load(schema) or {}).get("title")
        if not title:
            raise ValueError(f"output {output_name!r}: no title in its schema (SchemaToArtifactType)")
        properties = {key: struct_value_to_mlmd(value) for key, value in artifact.metadata.fields.items()
                      if key != "_kfp_workspace"}
        properties.setdefault("display_name", {"string_value": output_name})
        properties.setdefault("store_session_info", {"string_value": "{}"})
        artifact_id = self._next_id("artifacts")
        self.data["artifacts"][str(artifact_id)] = {"uri": artifact.uri, "type": title,
                                                    "custom_properties": properties}
        return artifact_id

    def runtime_artifact(self, artifact_id: int) -> pipeline_spec_pb2.RuntimeArtifact:
        """An upstream output as the driver hands it on: toRuntimeArtifact (name
        is the MLMD id) plus OutputArtifact.ToRuntimeArtifact's type, whose schema
        GetOutputArtifactsByExecutionId leaves empty ("TODO(Bobgy): figure out
        how to get schema"), in metadata/client.go."""
        stored = self.data["artifacts"][str(artifact_id)]
        artifact = pipeline_spec_pb2.RuntimeArtifact(name=str(artifact_id), uri=stored["uri"])
        artifact.metadata.update({key: mlmd_to_struct_value(value)
                                  for key, value in stored["custom_properties"].items()})
        artifact.type.instance_schema = ""
        return artifact

    def add_execution(self, task: str, output_artifacts: Dict[str, int],
                      output_parameters: Dict[str, object], fingerprint: Optional[str],
                      pipeline_name: str) -> int:
        execution_id = self._next_id("executions")
        self.data["executions"][str(execution_id)] = {
            "task": task, "output_artifacts": output_artifacts, "output_parameters": output_parameters}
        if fingerprint:  # driver/cache.go createCache; cacheutils/cache.go CreateExecutionCache
            self.data["cache"].setdefault(f"pipeline/{pipeline_name}", {})[fingerprint] = execution_id
        return execution_id

    def artifacts_by_name(self, artifact_ids: Mapping[str, int]) -> Dict[str, dict]:
        """Output name -> the stored artifact (uri, type, custom properties) and its id."""
        return {name: self.data["artifacts"][str(artifact_id)] | {"id": artifact_id}
                for name, artifact_id in artifact_ids.items()}

    def cached_execution(self, fingerprint: str, pipeline_name: str) -> Optional[dict]:
        """cacheutils/cache.go GetExecutionCache: the latest execution with this
        fingerprint in this pipeline."""
        execution_id = self.data["cache"].get(f"pipeline/{pipeline_name}", {}).get(fingerprint)
        return None if execution_id is None else self.data["executions"][str(execution_id)]


def _artifact_schema(artifact_type: pipeline_spec_pb2.ArtifactTypeSchema) -> str:
    """component/launcher_v2.go getArtifactSchema."""
    kind = artifact_type.WhichOneof("kind")
    if kind == "instance_schema":
        return artifact_type.instance_schema
    if kind == "schema_title":
        return "title: " + artifact_type.schema_title
    raise ValueError(f"unsupported artifact type {artifact_type} (getArtifactSchema)")


# ---- the cache key: cacheutils/cache.go GenerateCacheKey, driver/cache.go getFingerPrint --------

def cache_fingerprint(executor_input: pipeline_spec_pb2.ExecutorInput,
                      output_parameter_types: Mapping[str, str], cmd_args: Sequence[str],
                      image: str, pvc_names: Sequence[str]) -> str:
    """sha256 of the cache key: input artifact names (MLMD ids), input parameter
    values, output artifacts without their URIs, output parameter types, and the
    container's image, command and arguments (unresolved) and PVC names."""
    outputs = {}
    for name, artifact_list in executor_input.outputs.artifacts.items():
        if artifact_list.artifacts:
            artifact = artifact_list.artifacts[0]
            wiped = pipeline_spec_pb2.RuntimeArtifact(name=artifact.name)
            wiped.type.CopyFrom(artifact.type)
            wiped.metadata.CopyFrom(artifact.metadata)
            outputs[name] = json_format.MessageToDict(wiped)
    key = {
        "inputArtifactNames": {name: {"artifactNames": [a.name for a in artifact_list.artifacts]}
                               for name, artifact_list in executor_input.inputs.artifacts.items()},
        "inputParameterValues": {name: json_format.MessageToDict(value)
                                 for name, value in executor_input.inputs.parameter_values.items()},
        "outputArtifactsSpec": outputs,
        "outputParametersSpec": {name: output_parameter_types[name]
                                 for name in executor_input.outputs.parameters},
        "containerSpec": {"image": image, "cmdArgs": list(cmd_args), "pvcNames": sorted(set(pvc_names))},
    }
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


# ---- placeholders: the launcher's compileCmdAndArgs (component/launcher_v2.go) ----------------

def resolve_placeholders(arguments: Sequence[str], executor_input: pipeline_spec_pb2.ExecutorInput) -> List[str]:
    """{{$}} is the whole ExecutorInput as JSON; {{$.inputs.parameters['N']}} a
    parameter's value as text; {{$.outputs.parameters['N'].output_file}} the file
    the launcher reads the output parameter from. Any other placeholder is an error."""
    executor_input_json = json_format.MessageToJson(executor_input)
    replacements = {"{{$}}": executor_input_json}
    for name, value in executor_input.inputs.parameter_values.items():
        text = value.string_value if value.WhichOneof("kind") == "string_value" \
            else json.dumps(json_format.MessageToDict(value))
        replacements[f"{{{{$.inputs.parameters['{name}']}}}}"] = text
    for name, parameter in executor_input.outputs.parameters.items():
        replacements[f"{{{{$.outputs.parameters['{name}'].output_file}}}}"] = parameter.output_file
    def replace(match: re.Match) -> str:
        if match.group(0) not in replacements:
            raise ValueError(f"placeholder {match.group(0)} is not emulated")
        return replacements[match.group(0)]

    return [PLACEHOLDER.sub(replace, argument) for argument in arguments]


def _text_to_value(text: str, parameter_type: str) -> object:
    """metadata/converter.go TextToPbValue."""
    if parameter_type == "STRING":
        return text
    if parameter_type in ("NUMBER_INTEGER", "NUMBER_DOUBLE"):
        return float(text.strip())
    if parameter_type == "BOOLEAN":
        return text.strip().lower() == "true"
    return json.loads(text)


# ---- where task commands run ---------------------------------------------------------------

class ProcessTaskRunner:
    """Runs a task's command as a process of this environment: `python` is this
    interpreter, the repository is on PYTHONPATH; the launcher's fixed paths
    (/tmp/kfp/outputs, /tmp/kfp_outputs) become folders of the task, since
    processes share this machine's /tmp."""

    localizes_paths = True

    def paths(self, task_dir: str) -> Dict[str, str]:
        return {PARAMETER_OUTPUT_DIR: os.path.join(task_dir, "parameters"),
                os.path.dirname(OUTPUT_METADATA_FILE): os.path.join(task_dir, "output_metadata")}

    def run(self, image: str, command: List[str], task_dir: str, log_path: str,
            kill_when: Optional[Callable[[bytes], bool]] = None) -> int:
        """The exit code; `kill_when(line)` true SIGKILLs the process (a lost pod)."""
        del image
        if command[0] == "python":
            command = [sys.executable] + command[1:]
        environment = dict(os.environ, PYTHONPATH=os.pathsep.join(
            p for p in (REPO, os.environ.get("PYTHONPATH")) if p))
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=task_dir,
                                   env=environment)
        with open(log_path, "wb") as log:
            for line in process.stdout:
                log.write(line)
                if kill_when and kill_when(line):
                    process.kill()
        return process.wait()


class DockerTaskRunner:
    """Runs a task's command in a container of the spec's image, without network,
    with `shared_folder` (pipeline root, data, serving folder) mounted at the same
    path, as a bucket and PVCs reach every pod."""

    def __init__(self, shared_folder: str):
        import docker  # pylint: disable=import-outside-toplevel
        self.client = docker.from_env()
        self.shared_folder = shared_folder

    localizes_paths = False
    paths = ProcessTaskRunner.paths

    def run(self, image: str, command: List[str], task_dir: str, log_path: str,
            kill_when: Optional[Callable[[bytes], bool]] = None) -> int:
        """The exit code; `kill_when(line)` true SIGKILLs the container (a lost pod)."""
        volumes = {self.shared_folder: {"bind": self.shared_folder, "mode": "rw"}}
        for inside, outside in self.paths(task_dir).items():
            volumes[outside] = {"bind": inside, "mode": "rw"}
        container = self.client.containers.run(image=image, command=command, detach=True,
                                               network_mode="none", volumes=volumes)
        try:
            with open(log_path, "wb") as log:
                for line in _lines(container.logs(stream=True, follow=True)):
                    log.write(line)
                    if kill_when and kill_when(line):
                        container.kill(signal="SIGKILL")
            return container.wait()["StatusCode"]
        finally:
            container.remove(force=True)


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    pending = b""
    for chunk in chunks:
        pending += chunk
        *complete, pending = pending.split(b"\n")
        for line in complete:
            yield line + b"\n"
    if pending:
        yield pending


# ---- the run -------------------------------------------------------------------------------

@dataclasses.dataclass
class PipelineRun:
    """A finished run: its tasks and the outputs each task produced or reused."""
    run_id: str
    tasks: List[TaskRun]
    output_artifacts: Dict[str, Dict[str, dict]]
    output_parameters: Dict[str, Dict[str, object]]

    def task(self, name: str) -> TaskRun:
        return next(t for t in self.tasks if t.task == name)

    def output_uri(self, task: str, output: str) -> str:
        return self.output_artifacts[task][output]["uri"]


class Backend:
    """Runs compiled packages like the open-source backend, keeping its state in `state_dir`."""

    def __init__(self, runner, state_dir: str, publish_logs: bool = True, wait_backoff: bool = True):
        self.runner = runner
        self.state = BackendState(state_dir)
        self.state_dir = state_dir
        # Argo waits backoff_duration * factor^n (capped) between attempts; a test
        # may skip the waits, which change nothing else.
        self.wait_backoff = wait_backoff
        # driver/main.go --publish_logs, "true" unless the API server's PUBLISH_LOGS
        # says otherwise (compiler/argocompiler/container.go), from 2.5 on.
        self.publish_logs = publish_logs

    def run(self, package_path: str, arguments: Mapping[str, object], pipeline_root: Optional[str] = None,
            enable_caching: bool = True, only: Optional[Sequence[str]] = None,
            on_task: Optional[Callable[[TaskRun], None]] = None,
            faults: Optional[Mapping[str, KillOnce]] = None) -> PipelineRun:
        """Runs every task (or the tasks in `only` and what they depend on).
        The root is the run's own, else the package's defaultPipelineRoot: the API
        server and driver read only the run's runtime config (driver/root_dag.go),
        but `catsdogs submit` and the KFP UI's run form fill it from the package."""
        package = kubeflow_package.load_package(package_path)
        spec = json_format.ParseDict(package.pipeline_spec, pipeline_spec_pb2.PipelineSpec())
        pipeline_root = pipeline_root or spec.default_pipeline_root
        if not pipeline_root:
            raise ValueError("no pipeline root: the backend would use minio://mlpipeline/v2/artifacts "
                             "(config/env.go), which TFX cannot write")
        deployment = json_format.ParseDict(package.pipeline_spec["deploymentSpec"],
                                           pipeline_spec_pb2.PipelineDeploymentConfig())
        platform = package.platform_spec.get("platforms", {}).get("kubernetes", {}) \
            .get("deploymentSpec", {}).get("executors", {})
        root_parameters = {name: value for name, value in package.parameter_defaults().items()
                           if value is not None}
        root_parameters.update(arguments)
        run_id = uuid.uuid4().hex[:12]
        run = PipelineRun(run_id, [], {}, {})
        for task_name in _topological_order(spec, only):
            task = spec.root.dag.tasks[task_name]
            component = spec.components[task.component_ref.name]
            container = deployment.executors[component.executor_label].container
            pvc_names = [mount.get("constant") or mount.get("pvcNameParameter", {})
                         .get("runtimeValue", {}).get("constant", "")
                         for mount in platform.get(component.executor_label, {}).get("pvcMount", [])]
            task_run = self._run_task(spec.pipeline_info.name, pipeline_root, task_name, task, component,
                                      container, pvc_names, root_parameters, run, enable_caching,
                                      (faults or {}).get(task_name))
            run.tasks.append(task_run)
            self.state.save()
            if on_task:
                on_task(task_run)
        return run

    def _run_task(self, pipeline_name, pipeline_root, task_name, task, component, container,
                  pvc_names, root_parameters, run, enable_caching, fault) -> TaskRun:
        task_dir = os.path.join(self.state_dir, "runs", run.run_id, task_name)
        os.makedirs(task_dir)
        paths = self.runner.paths(task_dir)
        for folder in paths.values():
            os.makedirs(folder)
        executor_input = pipeline_spec_pb2.ExecutorInput()
        self._resolve_inputs(executor_input, task, root_parameters, run)
        self._provision_outputs(executor_input, pipeline_root, pipeline_name, run.run_id, task_name, component)
        fingerprint = None
        if enable_caching and task.caching_options.enable_cache:
            fingerprint = cache_fingerprint(
                executor_input, {n: pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(p.parameter_type)
                                 for n, p in component.output_definitions.parameters.items()},
                list(container.command) + list(container.args), container.image, pvc_names)
            cached = self.state.cached_execution(fingerprint, pipeline_name)
            if cached:  # driver/cache.go reuseCachedOutputs: the cached execution's outputs, same ids
                run.output_artifacts[task_name] = self.state.artifacts_by_name(cached["output_artifacts"])
                run.output_parameters[task_name] = dict(cached["output_parameters"])
                return TaskRun(task_name, 0, 0.0, None, True, json_format.MessageToDict(executor_input))

        # The launcher runs the command with its placeholders filled in; the
        # executor sees the launcher's fixed paths, which are the task's folders on
        # this machine (mounted there in a container).
        on_host = _with_paths_mapped(executor_input, paths)
        seen_by_task = on_host if self.runner.localizes_paths else executor_input
        command = resolve_placeholders(list(container.command) + list(container.args), seen_by_task)
        started = time.monotonic()
        attempts = []
        # Argo's retryStrategy (compiler/argocompiler/container.go, from 2.5) reruns
        # the launcher's pod only: the driver ran once, so every attempt gets the
        # same ExecutorInput, output URIs included (launcher_v2.go
        # qualifyExecutorLogsURI says so). Argo's default retryPolicy, OnFailure,
        # retries a failed container, a killed one included.
        policy = task.retry_policy if task.HasField("retry_policy") else None
        while True:
            log_path = os.path.join(task_dir, f"task.attempt{len(attempts)}.log")
            exit_code = self.runner.run(container.image, command, task_dir, log_path, kill_when=fault)
            attempts.append(exit_code)
            print(f"[kfp backend] {task_name}: exit {exit_code} after {time.monotonic() - started:.1f} s "
                  f"(attempt {len(attempts)}, log: {log_path})", flush=True)
            if exit_code == 0:
                break
            if policy is None or len(attempts) > policy.max_retry_count:
                raise TaskFailed(task_name, exit_code, log_path)
            if self.wait_backoff:
                time.sleep(min(policy.backoff_duration.seconds * policy.backoff_factor ** (len(attempts) - 1),
                               policy.backoff_max_duration.seconds))
        self._publish(executor_input, on_host, task_name, component, run, fingerprint, pipeline_name)
        return TaskRun(task_name, exit_code, time.monotonic() - started, log_path, False,
                       json_format.MessageToDict(executor_input), tuple(attempts))

    def _resolve_inputs(self, executor_input, task, root_parameters, run) -> None:
        """driver/resolve.go resolveInputs: constants, the run's parameters, the
        upstream tasks' output parameters; upstream artifacts from MLMD, untyped."""
        for name, binding in task.inputs.parameters.items():
            kind = binding.WhichOneof("kind")
            value = executor_input.inputs.parameter_values[name]
            if kind == "runtime_value":
                value.CopyFrom(binding.runtime_value.constant)
            elif kind == "component_input_parameter":
                json_format.ParseDict(root_parameters[binding.component_input_parameter], value)
            elif kind == "task_output_parameter":
                source = binding.task_output_parameter
                json_format.ParseDict(run.output_parameters[source.producer_task][source.output_parameter_key],
                                      value)
            else:
                raise ValueError(f"input parameter binding {kind} is not emulated")
        for name, binding in task.inputs.artifacts.items():
            source = binding.task_output_artifact
            artifact_id = run.output_artifacts[source.producer_task][source.output_artifact_key]["id"]
            executor_input.inputs.artifacts[name].artifacts.append(self.state.runtime_artifact(artifact_id))

    def _provision_outputs(self, executor_input, pipeline_root, pipeline_name, run_id, task_name,
                           component) -> None:
        """driver/driver.go provisionOutputs: every output (and executor-logs when
        logs are published) at <root>/<pipeline>/<run id>/<task>/<uuid>/<output>,
        typed as declared."""
        outputs = executor_input.outputs
        artifacts = dict(component.output_definitions.artifacts)
        if self.publish_logs:
            artifacts[EXECUTOR_LOGS] = pipeline_spec_pb2.ComponentOutputsSpec.ArtifactSpec()
            artifacts[EXECUTOR_LOGS].artifact_type.schema_title = "system.Artifact"
        run_root = f"{pipeline_root.rstrip('/')}/{pipeline_name}/{run_id}"  # metadata/client.go GetPipeline
        task_root = f"{run_root}/{task_name}/{uuid.uuid4()}"
        for name, spec in artifacts.items():
            artifact = outputs.artifacts[name].artifacts.add(name=name, uri=f"{task_root}/{name}")
            artifact.type.CopyFrom(spec.artifact_type)
            if spec.HasField("metadata"):
                artifact.metadata.CopyFrom(spec.metadata)
        for name in component.output_definitions.parameters:
            outputs.parameters[name].output_file = f"{PARAMETER_OUTPUT_DIR}/{name}"
        outputs.output_file = OUTPUT_METADATA_FILE

    def _publish(self, executor_input, on_host, task_name, component, run, fingerprint, pipeline_name) -> None:
        """component/launcher_v2.go: the executor output file (absent means empty,
        getExecutorOutputFile), output parameters from their files
        (collectOutputParameters), outputs merged with what the executor reported
        and recorded in MLMD (uploadOutputArtifacts); then the execution and its
        cache entry are published. `on_host`: the same input with the launcher's
        fixed paths as this machine sees them."""
        executor_output = pipeline_spec_pb2.ExecutorOutput()
        if os.path.exists(on_host.outputs.output_file):
            with open(on_host.outputs.output_file) as f:
                json_format.Parse(f.read(), executor_output, ignore_unknown_fields=True)
        parameters = {name: json_format.MessageToDict(value)
                      for name, value in executor_output.parameter_values.items()}
        for name, parameter in on_host.outputs.parameters.items():
            if name not in parameters:
                with open(parameter.output_file) as f:
                    parameters[name] = _text_to_value(f.read(), pipeline_spec_pb2.ParameterType.ParameterTypeEnum.Name(
                        component.output_definitions.parameters[name].parameter_type))
        artifact_ids = {}
        for name, artifact_list in executor_input.outputs.artifacts.items():
            artifact = artifact_list.artifacts[0]
            if name == EXECUTOR_LOGS:
                # A local root is no bucket: retrieveArtifactPath fails and the
                # launcher skips recording the log artifact.
                continue
            reported = executor_output.artifacts.get(name)
            if reported and reported.artifacts:  # mergeRuntimeArtifacts
                if reported.artifacts[0].uri:
                    artifact.uri = reported.artifacts[0].uri
                for key, value in reported.artifacts[0].metadata.fields.items():
                    artifact.metadata.fields[key].CopyFrom(value)
            artifact_ids[name] = self.state.record_artifact(name, artifact)
        self.state.add_execution(task_name, artifact_ids, parameters, fingerprint, pipeline_name)
        run.output_artifacts[task_name] = self.state.artifacts_by_name(artifact_ids)
        run.output_parameters[task_name] = parameters


def _with_paths_mapped(executor_input: pipeline_spec_pb2.ExecutorInput,
                       paths: Mapping[str, str]) -> pipeline_spec_pb2.ExecutorInput:
    """A copy whose output files under the launcher's fixed folders (keys of
    `paths`) are in the task's folders instead (values)."""
    def mapped(path: str) -> str:
        for inside, outside in paths.items():
            if path.startswith(inside + "/"):
                return outside + path[len(inside):]
        return path

    copy = pipeline_spec_pb2.ExecutorInput()
    copy.CopyFrom(executor_input)
    for parameter in copy.outputs.parameters.values():
        parameter.output_file = mapped(parameter.output_file)
    copy.outputs.output_file = mapped(copy.outputs.output_file)
    return copy


def _topological_order(spec: pipeline_spec_pb2.PipelineSpec, only: Optional[Sequence[str]]) -> List[str]:
    tasks = spec.root.dag.tasks
    wanted = set(tasks) if only is None else set()
    pending = list(only or [])
    while pending:
        name = pending.pop()
        if name not in wanted:
            wanted.add(name)
            pending.extend(tasks[name].dependent_tasks)
    order, done = [], set()
    while len(order) < len(wanted):
        ready = sorted(n for n in wanted - done if set(tasks[n].dependent_tasks) <= done)
        if not ready:
            raise ValueError(f"cycle among {sorted(wanted - done)}")
        order.extend(ready)
        done.update(ready)
    return order
