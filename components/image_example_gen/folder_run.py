"""ImageExampleGen's executor run on an image folder without a pipeline (no
orchestrator, no ML Metadata): the same Beam job, for benchmarks and tests."""
import os
from typing import Sequence

from tfx.dsl.components.base import base_beam_executor
from tfx.proto import example_gen_pb2
from tfx.types import standard_artifacts, standard_component_specs
from tfx.utils import proto_utils

from components import contract
from components.image_example_gen import executor as executor_lib
from components.image_example_gen.component import input_config_for


def ingest_folder(data_dir: str, output_dir: str, beam_pipeline_args: Sequence[str],
                  max_rejected_fraction: float = contract.DEFAULT_MAX_REJECTED_FRACTION,
                  max_image_pixels: int = contract.DEFAULT_MAX_IMAGE_PIXELS) -> standard_artifacts.Examples:
    """Writes the Examples artifact of data_dir (train/, validation/, test/, one
    folder per class) to <output_dir>/examples and returns it."""
    examples = standard_artifacts.Examples()
    examples.uri = os.path.join(output_dir, "examples")
    exec_properties = {
        standard_component_specs.INPUT_BASE_KEY: data_dir,
        standard_component_specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config_for()),
        standard_component_specs.OUTPUT_CONFIG_KEY: "{}",
        standard_component_specs.OUTPUT_DATA_FORMAT_KEY: example_gen_pb2.FORMAT_TF_EXAMPLE,
        standard_component_specs.OUTPUT_FILE_FORMAT_KEY: example_gen_pb2.FORMAT_TFRECORDS_GZIP,
        standard_component_specs.CUSTOM_CONFIG_KEY: proto_utils.proto_to_json(
            executor_lib.custom_config_for(max_rejected_fraction, max_image_pixels)),
    }
    context = base_beam_executor.BaseBeamExecutor.Context(beam_pipeline_args=list(beam_pipeline_args),
                                                          tmp_dir=os.path.join(output_dir, "tmp"))
    executor_lib.Executor(context).Do({}, {standard_component_specs.EXAMPLES_KEY: [examples]}, exec_properties)
    return examples
