"""The nodes that follow one Trainer: baseline lookup, Evaluator, Pusher, report."""
from typing import List

from tfx.dsl.components.base import base_node
from tfx.types import channel

from components import contract
from components.evaluation import eval_config
from components.evaluation.thresholds import BlessingThresholds
from components.evaluation.baseline import BaselineLookup
from components.evaluation.evaluator import Evaluator
from components.pusher.component import Pusher

def create_evaluation_nodes(model_name: str, suffix: str, model: channel.BaseChannel,
                            examples: channel.BaseChannel, thresholds: BlessingThresholds,
                            serving_model_dir: str, num_warmup_requests: int = 5,
                            num_worst_images: int = 10, with_report: bool = True
                            ) -> List[base_node.BaseNode]:
    """Ids end in _<suffix> (e.g. Evaluator_scratch) so both models' nodes coexist."""
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
        num_warmup_requests=num_warmup_requests,
    ).with_id(f"Pusher_{suffix}")
    nodes = [baseline, evaluator, pusher]
    if with_report:
        from components.evaluation.report import EvaluationReport
        nodes.append(EvaluationReport(
            model=model, evaluation=evaluator.outputs["evaluation"],
            model_blessing=evaluator.outputs["blessing"], baseline_model=baseline.outputs["baseline_model"],
            examples=examples, model_name=model_name, num_worst_images=num_worst_images,
        ).with_id(f"EvaluationReport_{suffix}"))
    return nodes
