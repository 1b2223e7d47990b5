"""Parts of create_pipeline() run on their own, for benchmarks and tests: the
evaluation gate for a model trained elsewhere, and the Beam components without
training. They build the nodes with pipeline/pipeline.py's own functions."""
import json
import os

from tfx import v1 as tfx
from tfx.types import standard_artifacts

from components import contract
from components.evaluation import eval_config
from components.evaluation.evaluator import Evaluator
from components.evaluation.thresholds import BlessingThresholds
from pipeline.configs import LOCAL_EXECUTOR_BEAM_ARGS, PipelineConfig
from pipeline.pipeline import create_data_components, create_model_gate


def create_gate_pipeline(root: str, model_dir: str, examples_dir: str, serving_dir: str,
                         model_name: str, thresholds: BlessingThresholds,
                         with_report: bool = True) -> tfx.dsl.Pipeline:
    """The evaluation gate alone, for a model trained elsewhere: importers (model,
    examples with a test split) -> the gate create_model_gate puts after each
    Trainer; pipeline root and ML Metadata under `root` (benchmarks, tests)."""
    examples = tfx.dsl.Importer(
        source_uri=examples_dir, artifact_type=standard_artifacts.Examples,
        properties={"split_names": json.dumps([contract.TEST_SPLIT])}).with_id("examples_importer")
    model = tfx.dsl.Importer(
        source_uri=model_dir, artifact_type=standard_artifacts.Model,
        custom_properties={"tfx_version": tfx.__version__}).with_id("model_importer")
    nodes = create_model_gate(
        model_name=model_name, suffix="test",
        model=model.outputs["result"], examples=examples.outputs["result"],
        thresholds=thresholds, serving_model_dir=serving_dir, with_report=with_report)
    return tfx.dsl.Pipeline(
        pipeline_name="evaluation-test", pipeline_root=os.path.join(root, "pipeline_root"),
        components=[examples, model, *nodes], enable_cache=False,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            os.path.join(root, "metadata.sqlite")),
        beam_pipeline_args=list(LOCAL_EXECUTOR_BEAM_ARGS))


DATA_MODEL_IMPORTER_ID = "model_importer"
DATA_EVALUATOR_ID = "Evaluator"


def create_data_pipeline(config: PipelineConfig, model_dir: str, metadata_connection_config=None,
                         evaluation_split: str = contract.TEST_SPLIT) -> tfx.dsl.Pipeline:
    """Every Beam component of create_pipeline() without training: the data
    components, then the Evaluator (TFMA, no baseline) on a model trained
    elsewhere (model_dir holds Format-Serving/, as a Trainer's model artifact
    does). For checking Beam runners and measuring the data half at scale;
    evaluation_split picks the split TFMA reads."""
    data_components = create_data_components(config)
    model = tfx.dsl.Importer(
        source_uri=model_dir, artifact_type=standard_artifacts.Model,
        custom_properties={"tfx_version": tfx.__version__}).with_id(DATA_MODEL_IMPORTER_ID)
    thresholds = next(iter(config.models.values())).thresholds
    evaluator = Evaluator(
        examples=data_components[0].outputs["examples"], model=model.outputs["result"],
        eval_config=eval_config.build_eval_config(thresholds), example_splits=[evaluation_split],
    ).with_id(DATA_EVALUATOR_ID)
    return tfx.dsl.Pipeline(
        pipeline_name=config.pipeline_name,
        pipeline_root=config.pipeline_root,
        components=[*data_components, model, evaluator],
        enable_cache=config.enable_cache,
        metadata_connection_config=metadata_connection_config,
        beam_pipeline_args=list(config.executor_beam_args),
    )
