"""create_pipeline(): the whole DAG, the one pipeline definition every runner shares.

Runners (pipeline/local_runner.py, pipeline/kubeflow_runner.py) only build a
PipelineConfig and choose an orchestrator; nothing here knows which one runs it.

    ImageExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator
                    -> Transform (preprocessing only)
    then, for each model of config.models (ids end in _<key>):
    Trainer -> ExplainGallery
            -> BaselineLookup -> Evaluator (TFMA, test split) -> Pusher
                                                             -> EvaluationReport
"""
from typing import List, Optional

from tfx import v1 as tfx
from tfx.dsl.components.base import base_node
from tfx.types import channel

from components import contract
from components.evaluation import eval_config
from components.evaluation.baseline import BaselineLookup
from components.evaluation.evaluator import Evaluator
from components.evaluation.report import EvaluationReport
from components.evaluation.thresholds import BlessingThresholds
from components.explain.component import ExplainGallery
from components.image_example_gen.component import ImageExampleGen
from components.pusher.component import Pusher
from components.statistics_options import statistics_options
from pipeline.configs import EvaluationConfig, PipelineConfig

PREPROCESSING_FN = "components.preprocessing.preprocessing_fn"


def create_model_gate(model_name: str, suffix: str, model: channel.BaseChannel,
                      examples: channel.BaseChannel, thresholds: BlessingThresholds,
                      serving_model_dir: str, evaluation: EvaluationConfig = EvaluationConfig(),
                      with_report: bool = True, model_run: Optional[channel.BaseChannel] = None,
                      model_package: str = "") -> List[base_node.BaseNode]:
    """What follows a Trainer: BaselineLookup -> Evaluator (TFMA on the test split,
    against the served baseline) -> Pusher (only a blessed model), and the HTML
    EvaluationReport (with the Trainer's `model_run` and the model's `model_package`,
    it sets the run's accuracy beside its recipe's recorded seeds). Ids end in
    _<suffix> (e.g. Evaluator_scratch) so every model's nodes coexist."""
    baseline = BaselineLookup(
        candidate_model=model, serving_model_dir=serving_model_dir, model_name=model_name,
    ).with_id(f"BaselineLookup_{suffix}")
    evaluator = Evaluator(
        examples=examples, model=model, baseline_model=baseline.outputs["baseline_model"],
        eval_config=eval_config.build_eval_config(thresholds),
        example_splits=[contract.TEST_SPLIT],
    ).with_id(f"Evaluator_{suffix}")
    pusher = Pusher(
        model=model, model_blessing=evaluator.outputs["blessing"], examples=examples,
        serving_model_dir=serving_model_dir, model_name=model_name,
        num_warmup_requests=evaluation.num_warmup_requests,
    ).with_id(f"Pusher_{suffix}")
    if not with_report:
        return [baseline, evaluator, pusher]
    report = EvaluationReport(
        model=model, evaluation=evaluator.outputs["evaluation"],
        model_blessing=evaluator.outputs["blessing"], baseline_model=baseline.outputs["baseline_model"],
        examples=examples, model_name=model_name, num_worst_images=evaluation.num_worst_images,
        model_package=model_package, **({"model_run": model_run} if model_run is not None else {}),
    ).with_id(f"EvaluationReport_{suffix}")
    return [baseline, evaluator, pusher, report]


def create_data_components(config: PipelineConfig) -> List[base_node.BaseNode]:
    """ImageExampleGen, StatisticsGen, SchemaGen, ExampleValidator and Transform, in that order."""
    # Ingestion, statistics, schema and validation.
    example_gen = ImageExampleGen(
        input_base=config.data_root,
        max_rejected_fraction=config.ingestion.max_rejected_fraction,
        max_image_pixels=config.ingestion.max_image_pixels,
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"],
                                                  stats_options=statistics_options())
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True)
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"])

    # Preprocessing only (no analyzers): Trainers apply the graph to raw examples
    # in tf.data, so nothing is materialised (150x150x3 floats would be ~270 KB
    # per example). The selected models' image shape reaches preprocessing_fn as
    # custom_config.
    transform = tfx.components.Transform(
        examples=example_gen.outputs["examples"], schema=schema_gen.outputs["schema"],
        preprocessing_fn=PREPROCESSING_FN, materialize=False, disable_statistics=True,
        custom_config=config.image_shape.as_custom_config())
    return [example_gen, statistics_gen, schema_gen, example_validator, transform]


def create_pipeline(config: PipelineConfig,
                    metadata_connection_config=None) -> tfx.dsl.Pipeline:
    data_components = create_data_components(config)
    example_gen, transform = data_components[0], data_components[-1]
    examples = example_gen.outputs["examples"]

    # One Trainer per model (train on `train`, validate on `validation`).
    trainers = {
        key: tfx.components.Trainer(
            run_fn=model.spec.run_fn,
            examples=examples,
            transform_graph=transform.outputs["transform_graph"],
            train_args=tfx.proto.TrainArgs(splits=[contract.TRAIN_SPLIT]),
            eval_args=tfx.proto.EvalArgs(splits=[contract.EVAL_SPLIT]),
            custom_config=model.hparams.as_custom_config(),
        ).with_id(model.spec.trainer_id)
        for key, model in config.models.items()}

    # After each Trainer: an HTML gallery of Grad-CAM on test images,
    # activations and filter patterns (book section 5.4).
    galleries = [
        ExplainGallery(model=trainers[key].outputs["model"], examples=examples)
        .with_id(model.spec.explain_gallery_id)
        for key, model in config.models.items()]

    # After each Trainer: its evaluation gate and report.
    gates = [
        node
        for key, model in config.models.items()
        for node in create_model_gate(
            model_name=model.spec.served_name, suffix=key, model=trainers[key].outputs["model"],
            examples=examples, thresholds=model.thresholds,
            serving_model_dir=config.serving_model_dir, evaluation=config.evaluation,
            model_run=trainers[key].outputs["model_run"], model_package=model.spec.package)]

    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[*data_components, *trainers.values(), *galleries, *gates],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.executor_beam_args),
    )


def component_by_id(pipeline: tfx.dsl.Pipeline, component_id: str) -> Optional[base_node.BaseNode]:
    return next((c for c in pipeline.components if c.id == component_id), None)
