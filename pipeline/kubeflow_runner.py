"""Kubeflow Pipelines v2 runner: compiles create_pipeline() into a KFP PipelineSpec (YAML).

TFX's KubeflowV2DagRunner builds the PipelineSpec; this module injects the
cluster's configuration (image, storage, Beam args, runtime parameters),
sets each task's container resources through TFX's with_platform_config
(Trainers get GPUs) and adds a Kubernetes platform spec (GPU node pool, volume
mounts) next to it, written by kfp's own YAML writer, so the file is what
`kfp.Client` and the KFP UI's "Upload pipeline" accept.
"""
import dataclasses
import json
import os
from typing import Dict, Optional, Sequence, Set

from google.protobuf import json_format, message
from kfp.compiler import pipeline_spec_builder
from kfp.pipeline_spec import pipeline_spec_pb2
from kubernetes.utils import parse_quantity
from tfx import v1 as tfx
from tfx.orchestration.data_types import RuntimeParameter
from tfx.orchestration.kubeflow.v2 import compiler_utils, kubeflow_v2_dag_runner

from pipeline import configs, kubeflow_cache, kubeflow_pipeline_root, kubeflow_platform, model_registry, overrides
from pipeline.kfp_task_entrypoint import OUTPUTS_SPEC_FLAG
from pipeline.pipeline import component_by_id, create_pipeline

ResourceSpec = pipeline_spec_pb2.PipelineDeploymentConfig.PipelineContainerSpec.ResourceSpec

def _quantity(quantity: str, kind: str, example: str) -> float:
    try:
        return float(parse_quantity(quantity))
    except ValueError:
        raise ValueError(f"not a Kubernetes {kind} quantity: {quantity!r} (use e.g. {example})") from None


def cpu_to_float(quantity: str) -> float:
    """A Kubernetes CPU quantity ('500m', '4') as cores."""
    return _quantity(quantity, "CPU", "'500m' or '4'")


def memory_to_float(quantity: str) -> float:
    """A Kubernetes memory quantity ('16Gi', '512M') as bytes."""
    return _quantity(quantity, "memory", "'16Gi' or '512Mi'")


@dataclasses.dataclass(frozen=True)
class ContainerResources:
    """CPU/memory requests and limits of a task's container (Kubernetes quantities)."""
    cpu_request: Optional[str] = None
    memory_request: Optional[str] = None
    cpu_limit: Optional[str] = None
    memory_limit: Optional[str] = None


@dataclasses.dataclass(frozen=True)
class GpuRequest:
    """Accelerators a Trainer task asks for (extended resource name and count)."""
    count: int = 1
    resource_type: str = "nvidia.com/gpu"


def resource_spec(resources: ContainerResources, gpu: Optional[GpuRequest] = None) -> ResourceSpec:
    """KFP's ResourceSpec, filled the way kfp's compiler does: the string fields
    current KFP backends read, and the numeric fields older ones read."""
    spec = ResourceSpec()
    if resources.cpu_request:
        spec.resource_cpu_request = resources.cpu_request
        spec.cpu_request = cpu_to_float(resources.cpu_request)
    if resources.cpu_limit:
        spec.resource_cpu_limit = resources.cpu_limit
        spec.cpu_limit = cpu_to_float(resources.cpu_limit)
    if resources.memory_request:
        spec.resource_memory_request = resources.memory_request
        spec.memory_request = memory_to_float(resources.memory_request)
    if resources.memory_limit:
        spec.resource_memory_limit = resources.memory_limit
        spec.memory_limit = memory_to_float(resources.memory_limit)
    if gpu and gpu.count > 0:
        spec.accelerator.resource_type = gpu.resource_type
        spec.accelerator.resource_count = str(gpu.count)
        spec.accelerator.type = gpu.resource_type
        spec.accelerator.count = gpu.count
    return spec


@dataclasses.dataclass(frozen=True)
class RetryPolicy:
    """How often KFP runs a failed task again, and the waits in between (the task's
    retryPolicy, Argo's retryStrategy on the open-source backend from 2.5 on)."""
    max_retries: int
    backoff_seconds: int
    backoff_factor: float = 2.0
    max_backoff_seconds: int = 3600

    def __post_init__(self):
        if self.max_retries < 0:
            raise ValueError(f"retries must be >= 0, got {self.max_retries}")

    def as_proto(self) -> pipeline_spec_pb2.PipelineTaskSpec.RetryPolicy:
        policy = pipeline_spec_pb2.PipelineTaskSpec.RetryPolicy(
            max_retry_count=self.max_retries, backoff_factor=self.backoff_factor)
        policy.backoff_duration.seconds = self.backoff_seconds
        policy.backoff_max_duration.seconds = self.max_backoff_seconds
        return policy

    def describe(self) -> str:
        if not self.max_retries:
            return "no retries"
        retries = "1 retry" if self.max_retries == 1 else f"{self.max_retries} retries"
        return (f"{retries}, waits {self.backoff_seconds} s x{self.backoff_factor:g} "
                f"up to {self.max_backoff_seconds} s")


def _gke_gpu_pool() -> kubeflow_platform.PodPlacement:
    return kubeflow_platform.PodPlacement(
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
        tolerations=(kubeflow_platform.Toleration(key="nvidia.com/gpu"),))


@dataclasses.dataclass(frozen=True)
class KubeflowConfig:
    """Everything about the cluster that the pipeline definition does not know."""
    image: str = configs.PIPELINE_IMAGE
    pipeline_root: Optional[str] = None
    """The package's defaultPipelineRoot (gs://...); None leaves it to each run."""
    data_root: str = "gs://catsdogs-tfx/data/cats_and_dogs_small"
    # The TF Serving model base path. A local path is a PersistentVolumeClaim
    # mounted into every task (k8s/base's serving-models claim); a gs:// path
    # needs no mount.
    serving_model_dir: str = "/models"
    serving_volume_claim: Optional[str] = "serving-models"
    display_name: Optional[str] = None
    pipeline_name: str = configs.PIPELINE_NAME
    models: Sequence[str] = model_registry.DEFAULT_MODELS
    """Models to train: registry keys (or served names)."""
    beam_pipeline_args: Sequence[str] = configs.LOCAL_BEAM_ARGS
    enable_cache: bool = True
    task_resources: ContainerResources = ContainerResources(
        cpu_request="1", memory_request="4Gi", cpu_limit="4", memory_limit="8Gi")
    trainer_resources: ContainerResources = ContainerResources(
        cpu_request="4", memory_request="16Gi", cpu_limit="8", memory_limit="32Gi")
    gpu: GpuRequest = GpuRequest()
    # A Trainer resumes from its last epoch (components/training), so retrying it
    # after a lost spot node costs an epoch, not the run; waits of minutes ride out
    # a wave of preemptions. Other tasks are deterministic and short: one retry
    # covers a transient failure (a storage hiccup, a node drained mid-task).
    trainer_retry: RetryPolicy = RetryPolicy(max_retries=3, backoff_seconds=120, max_backoff_seconds=1800)
    task_retry: RetryPolicy = RetryPolicy(max_retries=1, backoff_seconds=30, max_backoff_seconds=300)
    gpu_placement: kubeflow_platform.PodPlacement = dataclasses.field(default_factory=_gke_gpu_pool)
    settings: overrides.RunSettings = dataclasses.field(default_factory=overrides.RunSettings)
    """The models' hyper-parameters and blessing floors, compiled as the {model}_hparams
    and {model}_eval_config parameters' defaults."""

    def __post_init__(self):
        if self.serving_volume_claim and not os.path.isabs(self.serving_model_dir):
            raise ValueError(
                f"serving_model_dir {self.serving_model_dir!r} must be an absolute path where the "
                f"volume claim {self.serving_volume_claim!r} is mounted (or drop the claim and use "
                "a gs:// path)")
        if self.pipeline_root:
            kubeflow_pipeline_root.check(self.pipeline_root)  # ValueError for a root TFX cannot write
        if self.gpu.count < 0:
            raise ValueError(f"GPU count must be >= 0, got {self.gpu.count}")
        # ValueError naming the known models, no model, or a mix of channels (one Transform)
        model_registry.image_shape_for(self.models)

    @property
    def trainer_ids(self) -> Set[str]:
        """The Trainers' component ids: the tasks that get GPUs."""
        return {model_registry.get(name).trainer_id for name in self.models}


@dataclasses.dataclass(frozen=True)
class RuntimeParameterNames:
    """Names of the pipeline parameters a user sets in the KFP UI ({model}: the
    model's registry key, e.g. scratch for Trainer_scratch)."""
    data_root: str = "data_root"
    hparams: str = "{model}_hparams"
    """A Trainer's custom_config: JSON of the model's hyper-parameters (epochs, ...)."""
    eval_config: str = "{model}_eval_config"
    """An Evaluator's TFMA EvalConfig as JSON (blessing thresholds)."""


PARAMETERS = RuntimeParameterNames()


def build_pipeline_config(kubeflow: KubeflowConfig) -> configs.PipelineConfig:
    """The PipelineConfig for a KFP run; values users set per run are RuntimeParameters.
    The models' settings are applied as every runner applies them (overrides.model_settings)."""
    models = overrides.model_settings(kubeflow.models, kubeflow.settings)
    return configs.PipelineConfig(
        data_root=RuntimeParameter(
            name=PARAMETERS.data_root, ptype=str, default=kubeflow.data_root,
            description="folder with train/ validation/ test/, one sub-folder per class"),
        pipeline_root=kubeflow.pipeline_root,
        serving_model_dir=kubeflow.serving_model_dir,
        metadata_path=None,
        pipeline_name=kubeflow.pipeline_name,
        beam_pipeline_args=tuple(kubeflow.beam_pipeline_args),
        beam_worker_image=kubeflow.image,
        models=models,
        enable_cache=kubeflow.enable_cache,
    )


def expose_runtime_parameters(pipeline: tfx.dsl.Pipeline, config: configs.PipelineConfig) -> None:
    """Makes per-model settings pipeline parameters, defaulting to the compiled values.

    TFX's KFP v2 compiler can only bind a whole execution property to a runtime
    parameter (no parameter inside a dict or proto, no string templating), so each
    model's Trainer custom_config and Evaluator eval_config become JSON-string
    parameters: the executors read them exactly as they read the compiled value.
    """
    for key, model in config.models.items():
        trainer = component_by_id(pipeline, model.spec.trainer_id)
        trainer.exec_properties["custom_config"] = RuntimeParameter(
            name=PARAMETERS.hparams.format(model=key), ptype=str,
            default=json.dumps(json.loads(trainer.exec_properties["custom_config"]), sort_keys=True),
            description=f"{trainer.id} hyper-parameters (JSON): epochs, batch size, ...")
        evaluator = component_by_id(pipeline, model.spec.component_id("Evaluator"))
        eval_config = evaluator.exec_properties["eval_config"]
        if isinstance(eval_config, message.Message):
            eval_config = json_format.MessageToJson(eval_config)
        evaluator.exec_properties["eval_config"] = RuntimeParameter(
            name=PARAMETERS.eval_config.format(model=key), ptype=str,
            # one line: kfp's YAML writer also copies defaults into its header comment
            default=json.dumps(json.loads(eval_config), sort_keys=True),
            description=f"{evaluator.id} TFMA EvalConfig (JSON), with the blessing thresholds")


def set_container_resources(pipeline: tfx.dsl.Pipeline, kubeflow: KubeflowConfig) -> None:
    """Trainers get GPUs and large limits; every other task the default requests."""
    for component in pipeline.components:
        if not hasattr(component, "with_platform_config"):
            continue  # importers and resolvers run no container of ours
        if component.id in kubeflow.trainer_ids:
            component.with_platform_config(resource_spec(kubeflow.trainer_resources, kubeflow.gpu))
        else:
            component.with_platform_config(resource_spec(kubeflow.task_resources))


def create_kubeflow_pipeline(kubeflow: KubeflowConfig) -> tfx.dsl.Pipeline:
    config = build_pipeline_config(kubeflow)
    pipeline = create_pipeline(config)
    expose_runtime_parameters(pipeline, config)
    set_container_resources(pipeline, kubeflow)
    return pipeline


TFX_EXAMPLE_GEN_DRIVER = "tfx.orchestration.kubeflow.v2.file_based_example_gen.driver"
IMAGE_EXAMPLE_GEN_DRIVER = "components.image_example_gen.kfp_driver"
TFX_ENTRYPOINT = "tfx.orchestration.kubeflow.v2.container.kubeflow_v2_run_executor"
TASK_ENTRYPOINT = "pipeline.kfp_task_entrypoint"
EXAMPLE_GEN_TASK = "ImageExampleGen"


def deployment_config(pipeline_spec: pipeline_spec_pb2.PipelineSpec
                      ) -> pipeline_spec_pb2.PipelineDeploymentConfig:
    """The executors of a PipelineSpec (stored there as a Struct) as their proto."""
    return json_format.ParseDict(json_format.MessageToDict(pipeline_spec.deployment_spec),
                                 pipeline_spec_pb2.PipelineDeploymentConfig())


def executor_labels(pipeline_spec: pipeline_spec_pb2.PipelineSpec) -> Dict[str, str]:
    """task (component id) -> executor label, for tasks that run an executor."""
    labels = {}
    for task_name, task in pipeline_spec.root.dag.tasks.items():
        component = pipeline_spec.components[task.component_ref.name]
        if component.executor_label:
            labels[task_name] = component.executor_label
    return labels


def run_through_task_entrypoint(pipeline_spec: pipeline_spec_pb2.PipelineSpec,
                                deployment: pipeline_spec_pb2.PipelineDeploymentConfig) -> None:
    """Every TFX container runs pipeline/kfp_task_entrypoint.py (TFX's entrypoint
    on the ExecutorInput the open-source backend sends), told the component's
    declared outputs."""
    for task_name, label in executor_labels(pipeline_spec).items():
        container = deployment.executors[label].container
        if list(container.command) != ["python", "-m", TFX_ENTRYPOINT]:
            continue
        container.command[-1] = TASK_ENTRYPOINT
        outputs = pipeline_spec.components[pipeline_spec.root.dag.tasks[task_name].component_ref.name]
        container.args.extend([OUTPUTS_SPEC_FLAG, json_format.MessageToJson(outputs.output_definitions)])


def complete_executors(pipeline: tfx.dsl.Pipeline, pipeline_spec: pipeline_spec_pb2.PipelineSpec) -> None:
    """What TFX's compiler leaves out of the executors.

    - FileBasedExampleGen's executor is built separately, with a driver hook: it
      drops the component's platform_config (copied in, so ingestion gets its
      requests) and hooks TFX's generic driver, whose fingerprinting fails on
      files ImageExampleGen reports (the hook runs ImageExampleGen's own; Vertex
      AI runs it, the open-source backend never does).
    - The task entrypoint that reads the open-source backend's ExecutorInput.
    - The DataFingerprint task that keys ImageExampleGen's cache (kubeflow_cache.py).
    """
    deployment = deployment_config(pipeline_spec)
    labels = executor_labels(pipeline_spec)
    for component in pipeline.components:
        executor = deployment.executors.get(labels.get(component.id, ""))
        if executor is None or executor.WhichOneof("spec") != "container":
            continue
        platform_config = getattr(component, "platform_config", None)
        if platform_config is not None and not executor.container.HasField("resources"):
            executor.container.resources.CopyFrom(platform_config)
        driver_command = executor.container.lifecycle.pre_cache_check.command
        if list(driver_command) == ["python", "-m", TFX_EXAMPLE_GEN_DRIVER]:
            driver_command[-1] = IMAGE_EXAMPLE_GEN_DRIVER
    run_through_task_entrypoint(pipeline_spec, deployment)
    kubeflow_cache.add_data_fingerprint(pipeline_spec, deployment, EXAMPLE_GEN_TASK)
    pipeline_spec.deployment_spec.Clear()
    pipeline_spec.deployment_spec.update(json_format.MessageToDict(deployment))


def set_retry_policies(pipeline_spec: pipeline_spec_pb2.PipelineSpec, kubeflow: KubeflowConfig) -> None:
    """Every task's retry policy: the Trainers' or the other tasks'."""
    for task_name, task in pipeline_spec.root.dag.tasks.items():
        policy = kubeflow.trainer_retry if task_name in kubeflow.trainer_ids else kubeflow.task_retry
        if policy.max_retries:
            task.retry_policy.CopyFrom(policy.as_proto())


def pod_placements(pipeline: tfx.dsl.Pipeline, pipeline_spec: pipeline_spec_pb2.PipelineSpec,
                   kubeflow: KubeflowConfig) -> Dict[str, kubeflow_platform.PodPlacement]:
    """executor label -> Kubernetes placement: GPU pool for Trainers, the serving
    volume for every container task (Pusher writes there; evaluation may read it)."""
    volumes = ()
    if kubeflow.serving_volume_claim:
        volumes = (kubeflow_platform.VolumeClaimMount(
            claim_name=kubeflow.serving_volume_claim, mount_path=kubeflow.serving_model_dir),)
    containers = {label for label, executor in deployment_config(pipeline_spec).executors.items()
                  if executor.WhichOneof("spec") == "container"}
    labels = executor_labels(pipeline_spec)
    placements = {}
    for component in pipeline.components:
        label = labels.get(component.id)
        if label not in containers:
            continue
        base = kubeflow.gpu_placement if (component.id in kubeflow.trainer_ids and kubeflow.gpu.count > 0) \
            else kubeflow_platform.PodPlacement()
        placements[label] = dataclasses.replace(base, volume_claims=volumes)
    # DataFingerprint lists the files ImageExampleGen reads: the same mounts.
    placements[labels[kubeflow_cache.FINGERPRINT_TASK]] = placements[labels[EXAMPLE_GEN_TASK]]
    return placements


def runtime_parameters(pipeline: tfx.dsl.Pipeline) -> Dict[str, RuntimeParameter]:
    """Every RuntimeParameter the components' execution properties hold, by name."""
    found = {}
    for component in pipeline.components:
        for value in component.exec_properties.values():
            if isinstance(value, RuntimeParameter):
                found[value.name] = value
    return found


def attach_parameter_defaults(pipeline: tfx.dsl.Pipeline,
                              pipeline_spec: pipeline_spec_pb2.PipelineSpec) -> None:
    """TFX's compiler declares runtime parameters without their defaults (it puts
    values in the PipelineJob wrapper, which the KFP API does not take); the
    PipelineSpec carries them here, so the KFP UI pre-fills them."""
    inputs = pipeline_spec.root.input_definitions.parameters
    for name, parameter in runtime_parameters(pipeline).items():
        if name not in inputs:
            continue
        if parameter.default is not None:
            inputs[name].default_value.CopyFrom(compiler_utils.get_google_value(parameter.default))
            inputs[name].is_optional = True
        if parameter.description:
            inputs[name].description = parameter.description


@dataclasses.dataclass(frozen=True)
class CompiledPipeline:
    path: str
    pipeline_spec: pipeline_spec_pb2.PipelineSpec
    platform_spec: pipeline_spec_pb2.PlatformSpec


def compile_pipeline(kubeflow: KubeflowConfig, output_path: str) -> CompiledPipeline:
    """Compiles the pipeline to `output_path` (.yaml): PipelineSpec, then the platform spec."""
    if not output_path.endswith((".yaml", ".yml")):
        raise ValueError(f"output {output_path!r} must end in .yaml or .yml: the KFP API and UI "
                         "take the PipelineSpec as YAML")
    pipeline = create_kubeflow_pipeline(kubeflow)
    runner_config = kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(
        display_name=kubeflow.display_name or kubeflow.pipeline_name,
        default_image=kubeflow.image,
        # Schema 2.1 puts parameters in the fields open-source KFP v2 backends
        # fill in (parameterValues); 2.0 executors would see no exec properties.
        use_pipeline_spec_2_1=True,
    )
    job = kubeflow_v2_dag_runner.KubeflowV2DagRunner(config=runner_config).run(
        pipeline, write_out=False)
    pipeline_spec = json_format.ParseDict(job["pipelineSpec"], pipeline_spec_pb2.PipelineSpec())
    attach_parameter_defaults(pipeline, pipeline_spec)
    complete_executors(pipeline, pipeline_spec)
    set_retry_policies(pipeline_spec, kubeflow)
    if kubeflow.pipeline_root:
        # TFX puts the root in the PipelineJob wrapper (runtimeConfig), which the KFP
        # API does not take; the KFP UI's run form and `catsdogs submit` read it here.
        pipeline_spec.default_pipeline_root = kubeflow.pipeline_root
    platform_spec = kubeflow_platform.build_platform_spec(
        pod_placements(pipeline, pipeline_spec, kubeflow))
    os.makedirs(os.path.dirname(os.path.abspath(output_path)), exist_ok=True)
    pipeline_spec_builder.write_pipeline_spec_to_file(
        pipeline_spec=pipeline_spec,
        pipeline_description=f"cats vs dogs convnets (TFX {tfx.__version__}), compiled by catsdogs",
        platform_spec=platform_spec,
        package_path=output_path,
    )
    return CompiledPipeline(output_path, pipeline_spec, platform_spec)


def _retries_of(task_name: str, task: pipeline_spec_pb2.PipelineTaskSpec) -> str:
    kind = "Trainers" if task_name.startswith("Trainer_") else "other tasks"
    if not task.HasField("retry_policy"):
        return f"{kind}: no retries"
    policy = task.retry_policy
    return f"{kind}: " + RetryPolicy(policy.max_retry_count, policy.backoff_duration.seconds,
                                     policy.backoff_factor, policy.backoff_max_duration.seconds).describe()


def describe(compiled: CompiledPipeline) -> str:
    """A short human summary of a compiled pipeline (tasks, parameters, GPU tasks)."""
    spec = compiled.pipeline_spec
    tasks = sorted(spec.root.dag.tasks)
    parameters = json_format.MessageToDict(spec.root.input_definitions).get("parameters", {})
    executors = deployment_config(spec).executors
    gpu_tasks = sorted(task for task, label in executor_labels(spec).items()
                       if executors[label].container.resources.accelerator.resource_count)
    lines = [f"pipeline {spec.pipeline_info.name}: {len(tasks)} tasks -> {compiled.path}",
             "  pipeline root: " + (spec.default_pipeline_root or "none (each run must be given one)"),
             "  tasks: " + ", ".join(tasks),
             "  GPU tasks: " + (", ".join(gpu_tasks) or "none"),
             "  retries: " + "; ".join(sorted({_retries_of(name, task) for name, task in spec.root.dag.tasks.items()})),
             "  parameters:"]
    lines += [f"    {name} = {json.dumps(p.get('defaultValue'))}" for name, p in sorted(parameters.items())]
    return "\n".join(lines)
