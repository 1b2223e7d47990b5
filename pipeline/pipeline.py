"""create_pipeline(): the one pipeline definition every runner shares.

Runners (pipeline/local_runner.py, pipeline/kubeflow_runner.py) only build a
PipelineConfig and choose an orchestrator; nothing here knows which one runs it.
"""
from typing import List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_node

from components.image_example_gen.component import ImageExampleGen
from pipeline.configs import PipelineConfig

PREPROCESSING_FN = "components.preprocessing.preprocessing_fn"


def create_data_components(config: PipelineConfig) -> List[base_node.BaseNode]:
    """Ingestion, statistics, schema, validation and the transform graph."""
    example_gen = ImageExampleGen(
        input_base=config.data_root,
        max_rejected_fraction=config.ingestion.max_rejected_fraction,
        max_image_pixels=config.ingestion.max_image_pixels,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])
    return [example_gen, statistics_gen, schema_gen, example_validator]


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    components = create_data_components(config)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=components,
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.beam_pipeline_args),
    )


def component_by_id(pipeline: tfx.dsl.Pipeline, component_id: str) -> Optional[base_node.BaseNode]:
    return next((c for c in pipeline.components if c.id == component_id), None)
