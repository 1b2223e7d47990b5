"""`catsdogs compile`: the KFP v2 PipelineSpec YAML, read back with kfp's own loader and protos.

Checks whatever create_pipeline() builds: every component is a task with the
right dependencies, Trainers get GPUs and the GPU node pool, runtime parameters
carry defaults, images and Beam args are the configured ones.
"""
import json
import os

import pytest
import yaml
from google.protobuf import json_format

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from kfp import components as kfp_components  # noqa: E402
from kfp.pipeline_spec import pipeline_spec_pb2  # noqa: E402

from components.evaluation import eval_config  # noqa: E402
from pipeline import (  # noqa: E402
    cli,
    configs,
    kfp_task_entrypoint,
    kubeflow_cache,
    kubeflow_package,
    kubeflow_pipeline_root,
    kubeflow_platform,
    kubeflow_runner,
)

CUSTOM = {
    "image": "registry.example.com/ml/catsdogs-tfx:1.2.3",
    "gpus": 2,
    "node_selector": ("pool", "a100"),
    "toleration": "dedicated=ml:NoExecute",
    "beam_args": ("--runner=DataflowRunner", "--project=demo", "--region=europe-west4"),
}


def parse_executor_config(config):
    """Reads one executor config back; unknown fields or wrong types raise ParseError."""
    return json_format.ParseDict(dict(config), kubeflow_platform.KubernetesExecutorConfig())


def executor_configs(platform_spec):
    """executor label -> Kubernetes executor config dict, from a PlatformSpec document."""
    if not platform_spec:
        return {}
    kubernetes = platform_spec.get("platforms", {}).get(kubeflow_platform.PLATFORM, {})
    return dict(kubernetes.get("deploymentSpec", {}).get("executors", {}))


@pytest.fixture(scope="module")
def default_compiled(tmp_path_factory):
    config = kubeflow_runner.KubeflowConfig()
    path = str(tmp_path_factory.mktemp("kfp") / "pipeline.yaml")
    compiled = kubeflow_runner.compile_pipeline(config, path)
    pipeline = kubeflow_runner.create_kubeflow_pipeline(config)
    return config, pipeline, compiled


@pytest.fixture(scope="module")
def cli_compiled(tmp_path_factory):
    """Compiled through the command line with every cluster option changed."""
    path = str(tmp_path_factory.mktemp("kfp-cli") / "custom.yaml")
    key, value = CUSTOM["node_selector"]
    argv = ["compile", "--output", path, "--image", CUSTOM["image"], "--gpus", str(CUSTOM["gpus"]),
            "--gpu-node-selector", f"{key}={value}", "--gpu-toleration", CUSTOM["toleration"],
            "--serving-model-dir", "gs://bucket/serving", "--serving-volume-claim", "",
            "--trainer-memory", "48Gi"]
    argv += [f"--beam-arg={arg}" for arg in CUSTOM["beam_args"]]
    assert cli.main(argv) == 0
    return kubeflow_package.load_package(path)


def _documents(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d]


def _executors(spec_dict):
    deployment = json_format.ParseDict(spec_dict["deploymentSpec"],
                                       pipeline_spec_pb2.PipelineDeploymentConfig())
    return deployment.executors


def _executor_label(spec_dict, task):
    component = spec_dict["root"]["dag"]["tasks"][task]["componentRef"]["name"]
    return spec_dict["components"][component]["executorLabel"]


def _beam_args(container):
    """What TFX's compiler puts between the inputs spec and the outputs spec."""
    args = list(container.args)
    return args[args.index("--json_serialized_inputs_spec_args") + 2:
                args.index(kfp_task_entrypoint.OUTPUTS_SPEC_FLAG)]


def _trainers(pipeline, config):
    return [c for c in pipeline.components if c.id in config.trainer_ids]


def test_output_is_a_pipeline_spec_yaml_kfp_loads(default_compiled):
    _, pipeline, compiled = default_compiled
    documents = _documents(compiled.path)
    assert "pipelineInfo" in documents[0] and "pipelineSpec" not in documents[0]
    spec = json_format.ParseDict(documents[0], pipeline_spec_pb2.PipelineSpec())
    assert spec.schema_version == "2.1.0"
    assert spec.pipeline_info.name == pipeline.pipeline_info.pipeline_name
    component = kfp_components.load_component_from_file(compiled.path)
    assert component.name == pipeline.pipeline_info.pipeline_name
    assert set(component.component_spec.inputs) == set(kubeflow_runner.runtime_parameters(pipeline))


def test_every_component_is_a_task_with_its_upstream_dependencies(default_compiled):
    _, pipeline, compiled = default_compiled
    spec = _documents(compiled.path)[0]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {c.id for c in pipeline.components} | {kubeflow_cache.FINGERPRINT_TASK}
    for component in pipeline.components:
        task = tasks[component.id]
        upstream = {node.id for node in component.upstream_nodes}
        if component.id == kubeflow_runner.EXAMPLE_GEN_TASK:
            upstream.add(kubeflow_cache.FINGERPRINT_TASK)
        assert set(task.get("dependentTasks", [])) == upstream, component.id
        for key, channel in component.inputs.items():
            source = task["inputs"]["artifacts"][key]["taskOutputArtifact"]
            assert source == {"producerTask": channel.producer_component_id,
                              "outputArtifactKey": channel.output_key}, (component.id, key)


def test_runtime_parameters_have_defaults_and_feed_tasks(default_compiled):
    config, pipeline, compiled = default_compiled
    spec = _documents(compiled.path)[0]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    assert parameters[kubeflow_runner.PARAMETERS.data_root]["defaultValue"] == config.data_root
    for name, declared in parameters.items():
        assert "defaultValue" in declared, f"runtime parameter {name} has no default"
    consumers = {name: [] for name in parameters}
    for task_name, task in spec["root"]["dag"]["tasks"].items():
        for value in task.get("inputs", {}).get("parameters", {}).values():
            if "componentInputParameter" in value:
                consumers[value["componentInputParameter"]].append(task_name)
    assert all(consumers.values()), f"parameters no task reads: {consumers}"
    assert "ImageExampleGen" in consumers[kubeflow_runner.PARAMETERS.data_root]


def test_trainer_hyper_parameters_and_eval_configs_are_json_parameters(default_compiled):
    config, pipeline, compiled = default_compiled
    spec = _documents(compiled.path)[0]
    parameters = spec["root"]["inputDefinitions"]["parameters"]
    tasks = spec["root"]["dag"]["tasks"]
    trainers = _trainers(pipeline, config)
    if not trainers:
        pytest.skip("create_pipeline() has no Trainer yet")
    built = kubeflow_runner.build_pipeline_config(config)
    for trainer in trainers:
        bound = tasks[trainer.id]["inputs"]["parameters"]["custom_config"]["componentInputParameter"]
        model = trainer.id.split("_", 1)[1]
        assert bound == kubeflow_runner.PARAMETERS.hparams.format(model=model)
        hparams = json.loads(parameters[bound]["defaultValue"])
        assert isinstance(hparams, dict) and hparams
        assert hparams == built.models[model].hparams.as_custom_config(), trainer.id
    for component in pipeline.components:
        if "eval_config" in component.exec_properties:
            bound = tasks[component.id]["inputs"]["parameters"]["eval_config"]["componentInputParameter"]
            json.loads(parameters[bound]["defaultValue"])


def test_every_container_runs_the_configured_image_with_beam_args(default_compiled):
    config, _, compiled = default_compiled
    executors = _executors(_documents(compiled.path)[0])
    containers = [e.container for e in executors.values() if e.WhichOneof("spec") == "container"]
    assert len(containers) == len(compiled.pipeline_spec.root.dag.tasks)
    for container in containers:
        assert container.image == config.image
        if container.command[-1] == kubeflow_cache.FINGERPRINT_MODULE:
            continue  # no Beam job
        assert container.command[-1] == kubeflow_runner.TASK_ENTRYPOINT
        assert _beam_args(container) == list(configs.with_worker_image(config.beam_pipeline_args, config.image))


def test_tfx_tasks_run_the_task_entrypoint_told_their_declared_outputs(default_compiled):
    _, _, compiled = default_compiled
    spec = compiled.pipeline_spec
    executors = kubeflow_runner.deployment_config(spec).executors
    for task_name, label in kubeflow_runner.executor_labels(spec).items():
        if task_name == kubeflow_cache.FINGERPRINT_TASK:
            continue
        args = list(executors[label].container.args)
        outputs = json_format.Parse(args[args.index(kfp_task_entrypoint.OUTPUTS_SPEC_FLAG) + 1],
                                    pipeline_spec_pb2.ComponentOutputsSpec())
        declared = spec.components[spec.root.dag.tasks[task_name].component_ref.name].output_definitions
        assert outputs == declared, task_name


def test_data_fingerprint_feeds_image_example_gen_and_is_never_cached(default_compiled):
    _, _, compiled = default_compiled
    tasks = compiled.pipeline_spec.root.dag.tasks
    fingerprint = tasks[kubeflow_cache.FINGERPRINT_TASK]
    example_gen = tasks[kubeflow_runner.EXAMPLE_GEN_TASK]
    assert not fingerprint.caching_options.enable_cache
    assert example_gen.caching_options.enable_cache
    binding = example_gen.inputs.parameters[kubeflow_cache.FINGERPRINT_INPUT].task_output_parameter
    assert (binding.producer_task, binding.output_parameter_key) == (
        kubeflow_cache.FINGERPRINT_TASK, kubeflow_cache.FINGERPRINT_OUTPUT)
    for name in (kubeflow_cache.DATA_ROOT_INPUT, kubeflow_cache.INPUT_CONFIG_INPUT):
        assert fingerprint.inputs.parameters[name] == example_gen.inputs.parameters[name]
    # TFX's executor is not told about the parameter: only the cache key holds it.
    label = kubeflow_runner.executor_labels(compiled.pipeline_spec)[kubeflow_runner.EXAMPLE_GEN_TASK]
    args = list(kubeflow_runner.deployment_config(compiled.pipeline_spec).executors[label].container.args)
    inputs_spec = json.loads(args[args.index("--json_serialized_inputs_spec_args") + 1])
    assert kubeflow_cache.FINGERPRINT_INPUT not in inputs_spec["parameters"]


def test_every_task_has_a_retry_policy_trainers_the_longer_one(default_compiled, tmp_path):
    config, _, compiled = default_compiled
    for task_name, task in compiled.pipeline_spec.root.dag.tasks.items():
        expected = config.trainer_retry if task_name in config.trainer_ids else config.task_retry
        assert task.retry_policy == expected.as_proto(), task_name
    assert config.trainer_retry.max_retries > config.task_retry.max_retries >= 1
    assert "retries: Trainers: 3 retries" in kubeflow_runner.describe(compiled)

    path = str(tmp_path / "no-retries.yaml")
    assert cli.main(["compile", "--output", path, "--trainer-retries", "5", "--task-retries", "0"]) == 0
    tasks = _documents(path)[0]["root"]["dag"]["tasks"]
    assert tasks["Trainer_scratch"]["retryPolicy"]["maxRetryCount"] == 5
    assert "retryPolicy" not in tasks["Transform"]


def test_pipeline_root_becomes_the_packages_default_pipeline_root(tmp_path, capsys):
    path = str(tmp_path / "rooted.yaml")
    assert cli.main(["compile", "--output", path, "--pipeline-root", "gs://bucket/runs"]) == 0
    assert _documents(path)[0]["defaultPipelineRoot"] == "gs://bucket/runs"
    assert kubeflow_package.load_package(path).default_pipeline_root == "gs://bucket/runs"
    assert "warning" not in capsys.readouterr().err


def test_compile_without_a_root_says_what_runs_will_do(default_compiled, capsys):
    _, _, compiled = default_compiled
    assert "defaultPipelineRoot" not in _documents(compiled.path)[0]
    assert kubeflow_runner.KubeflowConfig().pipeline_root is None
    message = kubeflow_pipeline_root.missing_root_warning()
    assert "minio://mlpipeline/v2/artifacts" in message and "--pipeline-root" in message


@pytest.mark.parametrize("root, reason", [("minio://mlpipeline/v2/artifacts", "no minio:// file system"),
                                          ("s3://bucket/root", "no s3:// file system"),
                                          ("relative/root", "absolute path")])
def test_compile_refuses_a_root_tfx_cannot_write(tmp_path, capsys, root, reason):
    assert cli.main(["compile", "--output", str(tmp_path / "p.yaml"), "--pipeline-root", root]) == 2
    error = capsys.readouterr().err
    assert reason in error and root in error
    assert not (tmp_path / "p.yaml").exists()


def test_trainers_request_gpus_and_limits_others_get_requests(default_compiled):
    config, pipeline, compiled = default_compiled
    spec = _documents(compiled.path)[0]
    executors = _executors(spec)
    for component in pipeline.components:
        resources = executors[_executor_label(spec, component.id)].container.resources
        if component.id in config.trainer_ids:
            assert resources.accelerator.resource_type == "nvidia.com/gpu"
            assert resources.accelerator.resource_count == str(config.gpu.count)
            assert resources.resource_cpu_limit == config.trainer_resources.cpu_limit
            assert resources.resource_memory_limit == config.trainer_resources.memory_limit
            assert resources.memory_limit == kubeflow_runner.memory_to_float(
                config.trainer_resources.memory_limit)
        else:
            assert not resources.accelerator.resource_count, component.id
            assert resources.resource_cpu_request == config.task_resources.cpu_request
            assert resources.resource_memory_request == config.task_resources.memory_request
    if not _trainers(pipeline, config):
        pytest.skip("create_pipeline() has no Trainer yet: GPU requests not exercised")


def test_platform_spec_pins_trainers_to_the_gpu_pool_and_mounts_serving_volume(default_compiled):
    config, pipeline, compiled = default_compiled
    documents = _documents(compiled.path)
    spec, platform = documents[0], documents[1]
    json_format.ParseDict(platform, pipeline_spec_pb2.PlatformSpec())
    by_label = executor_configs(platform)
    for component in pipeline.components:
        label = _executor_label(spec, component.id)
        executor = parse_executor_config(by_label[label])
        assert [(m.constant, m.mount_path) for m in executor.pvc_mount] == \
            [(config.serving_volume_claim, config.serving_model_dir)]
        assert executor.pvc_mount[0].pvc_name_parameter.runtime_value.constant.string_value == \
            config.serving_volume_claim
        if component.id in config.trainer_ids:
            assert dict(executor.node_selector.labels) == dict(config.gpu_placement.node_selector)
            assert [(t.key, t.operator, t.effect) for t in executor.tolerations] == \
                [(t.key, t.operator, t.effect) for t in config.gpu_placement.tolerations]
        else:
            assert not executor.node_selector.labels and not executor.tolerations, component.id


def test_cli_options_reach_the_compiled_spec(cli_compiled):
    spec, platform = cli_compiled.pipeline_spec, cli_compiled.platform_spec
    executors = _executors(spec)
    trainer_labels = {_executor_label(spec, t) for t in spec["root"]["dag"]["tasks"]
                      if t.startswith("Trainer")}
    for label, executor in executors.items():
        if executor.WhichOneof("spec") != "container":
            continue
        assert executor.container.image == CUSTOM["image"]
        if label != f"{kubeflow_cache.FINGERPRINT_TASK}_executor":
            assert _beam_args(executor.container) == [*CUSTOM["beam_args"], f"--sdk_container_image={CUSTOM['image']}"]
        if label in trainer_labels:
            assert executor.container.resources.accelerator.resource_count == str(CUSTOM["gpus"])
            assert executor.container.resources.resource_memory_limit == "48Gi"
    # No volume claim (gs:// model dir): only Trainers keep a Kubernetes config.
    configs = executor_configs(platform)
    assert set(configs) == trainer_labels
    key, value = CUSTOM["node_selector"]
    for config in configs.values():
        executor = parse_executor_config(config)
        assert dict(executor.node_selector.labels) == {key: value}
        assert [(t.key, t.operator, t.value, t.effect) for t in executor.tolerations] == \
            [("dedicated", "Equal", "ml", "NoExecute")]


def test_compile_refuses_json_output_and_bad_quantities(tmp_path):
    with pytest.raises(ValueError, match=r"\.yaml"):
        kubeflow_runner.compile_pipeline(kubeflow_runner.KubeflowConfig(), str(tmp_path / "p.json"))
    with pytest.raises(ValueError, match="memory quantity"):
        kubeflow_runner.resource_spec(kubeflow_runner.ContainerResources(memory_limit="lots"))
    with pytest.raises(ValueError, match="absolute path"):
        kubeflow_runner.KubeflowConfig(serving_model_dir="models")
    with pytest.raises(ValueError, match="unknown model"):
        kubeflow_runner.KubeflowConfig(models=("resnet",))


def test_load_package_rejects_tfx_pipeline_job_wrapper(tmp_path):
    wrapper = tmp_path / "pipeline.yaml"
    wrapper.write_text(yaml.safe_dump({"displayName": "x", "pipelineSpec": {"pipelineInfo": {}}}))
    with pytest.raises(ValueError, match="PipelineJob wrapper"):
        kubeflow_package.load_package(str(wrapper))
    with pytest.raises(FileNotFoundError, match="catsdogs compile"):
        kubeflow_package.load_package(str(tmp_path / "missing.yaml"))


def test_platform_schema_rejects_unknown_fields():
    with pytest.raises(json_format.ParseError, match="nodeSelektor"):
        parse_executor_config({"nodeSelektor": {"labels": {"a": "b"}}})


def test_compile_defaults_match_the_k8s_base_model_volume():
    """Pusher (compiled defaults) and TF Serving (k8s/base) share one claim and path."""
    base = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "k8s", "base")
    with open(os.path.join(base, "serving-models-pvc.yaml")) as f:
        claim = yaml.safe_load(f)
    with open(os.path.join(base, "tf-serving", "deployment.yaml")) as f:
        pod = yaml.safe_load(f)["spec"]["template"]["spec"]
    volume = next(v for v in pod["volumes"]
                  if v.get("persistentVolumeClaim", {}).get("claimName") == claim["metadata"]["name"])
    mount = next(m for m in pod["containers"][0]["volumeMounts"] if m["name"] == volume["name"])
    config = kubeflow_runner.KubeflowConfig()
    assert (config.serving_volume_claim, config.serving_model_dir) == \
        (claim["metadata"]["name"], mount["mountPath"])


def _artifact_types(pipeline_spec):
    """(component, input/output name, ArtifactTypeSchema) of every artifact in the spec."""
    for component_name, component in pipeline_spec.components.items():
        for definitions in (component.input_definitions, component.output_definitions):
            for name, spec in definitions.artifacts.items():
                yield component_name, name, spec.artifact_type


def test_every_artifact_type_imports_as_tfx_container_entrypoint_resolves_it(default_compiled):
    """TFX's KFP v2 entrypoint imports each input/output artifact type by its schema
    title before running an executor; a title that does not import fails the task
    on every KFP backend (as `system.HTML` once did)."""
    from tfx.orchestration.kubeflow.v2.container import kubeflow_v2_entrypoint_utils as entrypoint
    from tfx.types import artifact as tfx_artifact
    from tfx.utils import import_utils

    _, _, compiled = default_compiled
    types = list(_artifact_types(compiled.pipeline_spec))
    assert len(types) > 30
    titles = set()
    for component_name, name, artifact_type in types:
        class_path = entrypoint._retrieve_class_path(artifact_type)  # pylint: disable=protected-access
        artifact_class = import_utils.import_class_by_path(class_path)
        assert issubclass(artifact_class, tfx_artifact.Artifact), (component_name, name, class_path)
        title = yaml.safe_load(artifact_type.instance_schema)["title"]
        titles.add(title)
        if not title.startswith("tfx."):  # custom types: the title is the MLMD type name
            assert artifact_class.TYPE_NAME == title, (component_name, name)
    # The pages and metrics keep the types KFP's UI renders as HTML, scalars and plots.
    assert {"system.HTML", "system.Metrics", "system.ClassificationMetrics"} <= titles


def test_compile_quick_makes_the_run_local_quick_budgets_the_defaults(tmp_path):
    from pipeline import model_registry

    path = str(tmp_path / "quick.yaml")
    assert cli.main(["compile", "--output", path, "--quick"]) == 0
    defaults = kubeflow_package.load_package(path).parameter_defaults()
    for model in map(model_registry.get, ("scratch", "vgg16")):
        hparams = json.loads(defaults[kubeflow_runner.PARAMETERS.hparams.format(model=model.key)])
        assert {k: hparams[k] for k in model.quick_hparams} == model.quick_hparams
    # VGG16's default weights stay those of its spec: pods have no internet.
    assert json.loads(defaults["vgg16_hparams"])["weights"] == model_registry.get("vgg16").default_hparams.weights
    assert model_registry.get("vgg16").default_hparams.weights == "offline"
    # So do the smoke-run floors, in the Evaluators' EvalConfig parameters.
    for model in model_registry.MODELS[:2]:
        config = json_format.Parse(defaults[kubeflow_runner.PARAMETERS.eval_config.format(model=model.key)],
                                   eval_config.config_pb2.EvalConfig())
        expected = model.quick_min_accuracy or model.default_thresholds.min_accuracy
        assert eval_config.blessing_thresholds(config).min_accuracy == pytest.approx(expected)
    assert model_registry.get("vgg16").quick_min_accuracy < model_registry.get("vgg16").default_thresholds.min_accuracy


def test_image_example_gen_driver_hook_runs_the_components_own_driver(default_compiled):
    """TFX's generic KFP driver fingerprints with tf.io.gfile and fails on a broken
    link or a non-UTF-8 name; the hook runs ImageExampleGen's (tests/test_ingestion_kfp_driver.py)."""
    import importlib

    _, _, compiled = default_compiled
    label = kubeflow_runner.executor_labels(compiled.pipeline_spec)["ImageExampleGen"]
    executor = kubeflow_runner.deployment_config(compiled.pipeline_spec).executors[label]
    command = list(executor.container.lifecycle.pre_cache_check.command)
    assert command == ["python", "-m", kubeflow_runner.IMAGE_EXAMPLE_GEN_DRIVER]
    assert callable(importlib.import_module(command[-1]).main)
    assert executor.container.resources.resource_cpu_request  # requests copied in as well
