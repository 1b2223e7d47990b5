"""create_pipeline(): the one pipeline definition every runner shares.

Runners (pipeline/local_runner.py, pipeline/kubeflow_runner.py) only build a
PipelineConfig and choose an orchestrator; nothing here knows which one runs it.
"""
from typing import List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_node

from components import contract
from components.evaluation.pipeline_nodes import create_evaluation_nodes
from components.explain.component import ExplainGallery
from components.image_example_gen.component import ImageExampleGen
from components.image_shape import ImageShape
from pipeline import model_registry
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


def create_transform(examples, schema, image_shape: ImageShape = ImageShape()) -> base_node.BaseNode:
    """Preprocessing only (no analyzers): Trainers apply the graph to raw examples in
    tf.data, so nothing is materialised (150x150x3 floats would be ~270 KB per example).
    image_shape (the selected models' input) reaches preprocessing_fn as custom_config."""
    return tfx.components.Transform(
        examples=examples, schema=schema, preprocessing_fn=PREPROCESSING_FN,
        materialize=False, disable_statistics=True, custom_config=image_shape.as_custom_config())


def create_trainers(config: PipelineConfig, examples, transform_graph) -> List[base_node.BaseNode]:
    """One Trainer per model in config.train_models: train on `train`, validate on `validation`."""
    trainers = []
    for model_name in config.train_models:
        model = model_registry.get(model_name)
        trainers.append(tfx.components.Trainer(
            run_fn=model.run_fn,
            examples=examples,
            transform_graph=transform_graph,
            train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT]),
            eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL_SPLIT]),
            custom_config=config.hparams_for(model_name).as_custom_config(),
        ).with_id(model.trainer_id))
    return trainers


def create_explain_galleries(config: PipelineConfig, examples, trainers) -> List[base_node.BaseNode]:
    """After each Trainer: an HTML gallery of Grad-CAM on test images, activations and
    filter patterns (book section 5.4)."""
    return [ExplainGallery(model=trainer.outputs["model"], examples=examples)
            .with_id(model_registry.get(model_name).explain_gallery_id)
            for model_name, trainer in zip(config.train_models, trainers)]


def create_model_gates(config: PipelineConfig, examples, trainers) -> List[base_node.BaseNode]:
    """After each Trainer: BaselineLookup_<m> -> Evaluator_<m> (TFMA, test split) ->
    Pusher_<m>, and EvaluationReport_<m> (ids end like the Trainer's)."""
    nodes = []
    for model_name, trainer in zip(config.train_models, trainers):
        nodes += create_evaluation_nodes(
            model_name=model_name, suffix=model_registry.get(model_name).key,
            model=trainer.outputs["model"], examples=examples,
            thresholds=config.evaluation.thresholds_for(model_name),
            serving_model_dir=config.serving_model_dir,
            num_warmup_requests=config.evaluation.num_warmup_requests,
            num_worst_images=config.evaluation.num_worst_images)
    return nodes


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    components = create_data_components(config)
    example_gen, schema_gen = components[0], components[2]
    transform = create_transform(example_gen.outputs["examples"], schema_gen.outputs["schema"],
                                 config.image_shape)
    trainers = create_trainers(
        config, example_gen.outputs["examples"], transform.outputs["transform_graph"])
    components += [transform] + trainers + create_explain_galleries(
        config, example_gen.outputs["examples"], trainers)
    components += create_model_gates(config, example_gen.outputs["examples"], trainers)
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
