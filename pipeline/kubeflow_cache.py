"""ImageExampleGen's cache key on KFP: a DataFingerprint task whose output is an
input of ImageExampleGen.

The open-source KFP backend decides caching in its driver from the task's
input artifact ids, input parameter values, output spec, command, arguments,
image and volume names (backend/src/v2/driver/cache.go getFingerPrint,
cacheutils/cache.go GenerateCacheKey). It never runs the task's
`lifecycle.preCacheCheck` (no code under backend/ reads it), where TFX's
compiler puts the ExampleGen driver that fingerprints the input files. So
ImageExampleGen, whose inputs are all constant parameters and the data_root
path, would be served from the cache after the images under data_root
changed, and so would everything downstream.

The compiled spec therefore gets one task more. DataFingerprint runs every time
(caching off; it lists and stats the files, it does not read them:
components/image_example_gen/data_fingerprint.py) and its output parameter
becomes an input parameter of ImageExampleGen. The same files give the same
fingerprint, so an unchanged data root keeps ImageExampleGen and everything
after it cached (their input artifact ids stay the cached ones); a changed one
re-runs ingestion and the tasks that depend on it. TFX's executor never sees the
parameter (pipeline/kfp_task_entrypoint.py hands it only declared inputs).
"""
from kfp.pipeline_spec import pipeline_spec_pb2

FINGERPRINT_TASK = "DataFingerprint"
FINGERPRINT_MODULE = "components.image_example_gen.data_fingerprint"
FINGERPRINT_OUTPUT = "fingerprint"
FINGERPRINT_INPUT = "data_fingerprint"
"""The input parameter of ImageExampleGen that carries the fingerprint."""
DATA_ROOT_INPUT = "input_base"
INPUT_CONFIG_INPUT = "input_config"

_STRING = pipeline_spec_pb2.ParameterType.STRING


def add_data_fingerprint(pipeline_spec: pipeline_spec_pb2.PipelineSpec,
                         deployment: pipeline_spec_pb2.PipelineDeploymentConfig,
                         example_gen_task: str) -> str:
    """Adds the DataFingerprint task (and its component and executor) feeding
    `example_gen_task`; returns the new executor's label. The fingerprint task
    reads the data root and input config from the same bindings as the
    ExampleGen task, in the same image with the same resources."""
    example_gen = pipeline_spec.root.dag.tasks[example_gen_task]
    example_gen_component = pipeline_spec.components[example_gen.component_ref.name]
    example_gen_container = deployment.executors[example_gen_component.executor_label].container

    label = f"{FINGERPRINT_TASK}_executor"
    component = pipeline_spec.components[FINGERPRINT_TASK]
    component.executor_label = label
    for name in (DATA_ROOT_INPUT, INPUT_CONFIG_INPUT):
        component.input_definitions.parameters[name].parameter_type = _STRING
    component.output_definitions.parameters[FINGERPRINT_OUTPUT].parameter_type = _STRING

    container = deployment.executors[label].container
    container.image = example_gen_container.image
    container.command.extend(["python", "-m", FINGERPRINT_MODULE])
    container.args.extend([
        "--data-root", f"{{{{$.inputs.parameters['{DATA_ROOT_INPUT}']}}}}",
        "--input-config", f"{{{{$.inputs.parameters['{INPUT_CONFIG_INPUT}']}}}}",
        "--output-file", f"{{{{$.outputs.parameters['{FINGERPRINT_OUTPUT}'].output_file}}}}",
    ])
    if example_gen_container.HasField("resources"):
        container.resources.CopyFrom(example_gen_container.resources)

    task = pipeline_spec.root.dag.tasks[FINGERPRINT_TASK]
    task.task_info.name = FINGERPRINT_TASK
    task.component_ref.name = FINGERPRINT_TASK
    for name in (DATA_ROOT_INPUT, INPUT_CONFIG_INPUT):
        task.inputs.parameters[name].CopyFrom(example_gen.inputs.parameters[name])
    task.caching_options.enable_cache = False  # it must see the files of every run

    example_gen_component.input_definitions.parameters[FINGERPRINT_INPUT].parameter_type = _STRING
    binding = example_gen.inputs.parameters[FINGERPRINT_INPUT].task_output_parameter
    binding.producer_task = FINGERPRINT_TASK
    binding.output_parameter_key = FINGERPRINT_OUTPUT
    example_gen.dependent_tasks.append(FINGERPRINT_TASK)
    return label
