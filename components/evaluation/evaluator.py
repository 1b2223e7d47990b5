"""TFX's Evaluator, fed by BaselineLookup instead of a Resolver node.

BaselineLookup always emits a baseline Model artifact; when it found no usable
baseline the artifact holds only the reason. This executor drops such an
artifact before TFMA runs (so the change threshold is skipped, as TFX does on a
first run), and after TFMA it writes the decision, failed thresholds and the
shortfall included, into the blessing artifact and the log.

The EvalConfig is chosen for the data's class count (class_names.json of the
Examples): a binary config given for data of more than two classes (or the
other way round) is replaced by the right kind, thresholds kept.
"""
import tensorflow_model_analysis as tfma
from absl import logging
from google.protobuf import json_format
from tensorflow_model_analysis.proto import config_pb2
from tfx.components.evaluator import component as evaluator_component
from tfx.components.evaluator import executor as evaluator_executor
from tfx.dsl.components.base import executor_spec
from tfx.types import artifact_utils, standard_component_specs

from components.evaluation import baseline as baseline_lookup
from components.evaluation import decision as blessing_decision
from components.evaluation import eval_config as eval_configs
from components.formats import examples as examples_format


def eval_config_for_data(input_dict, exec_properties):
    """exec_properties with an EvalConfig that suits the Examples' class count."""
    examples = input_dict.get(standard_component_specs.EXAMPLES_KEY) or []
    given = exec_properties.get(standard_component_specs.EVAL_CONFIG_KEY)
    if not examples or not given:
        return exec_properties
    class_names = examples_format.class_names(examples[0].uri)
    config = json_format.Parse(given, config_pb2.EvalConfig())
    suited = eval_configs.for_classes(config, len(class_names))
    if suited is config:
        return exec_properties
    kind = "multi-class" if eval_configs.is_multiclass(suited) else "binary"
    thresholds = eval_configs.blessing_thresholds(suited)
    logging.info("Evaluator: %d classes in the data: %s metrics, thresholds kept (%s)",
                 len(class_names), kind, thresholds)
    return dict(exec_properties, **{standard_component_specs.EVAL_CONFIG_KEY: json_format.MessageToJson(suited)})

class Executor(evaluator_executor.Executor):

    def Do(self, input_dict, output_dict, exec_properties):
        input_dict = dict(input_dict)
        baselines = input_dict.get(standard_component_specs.BASELINE_MODEL_KEY) or []
        info = baseline_lookup.BaselineInfo(False, "no baseline input connected")
        if baselines:
            info = baseline_lookup.read_baseline_info(baselines[0])
        if info.found:
            logging.info("Evaluator: comparing with baseline version %d (%s)", info.version, info.source)
        else:
            (logging.warning if info.unusable else logging.info)(
                "Evaluator: no baseline, change thresholds skipped: %s", info.reason)
            input_dict.pop(standard_component_specs.BASELINE_MODEL_KEY, None)

        exec_properties = eval_config_for_data(input_dict, exec_properties)
        super().Do(input_dict, output_dict, exec_properties)

        blessings = output_dict.get(standard_component_specs.BLESSING_KEY) or []
        if not blessings:
            return
        evaluation_uri = artifact_utils.get_single_uri(output_dict[standard_component_specs.EVALUATION_KEY])
        decision = blessing_decision.decide(
            tfma.load_validation_result(evaluation_uri), info.found, info.reason, info.version)
        blessing = blessings[0]
        blessing_decision.write_decision(blessing.uri, decision)
        blessing.set_string_custom_property("decision", decision.summary())
        log = logging.info if decision.blessed else logging.warning
        log("%s: %s", self._node_id(), decision.summary())

    def _node_id(self) -> str:
        node = self._context.pipeline_node if self._context else None
        return node.node_info.id if node is not None else "Evaluator"


class Evaluator(evaluator_component.Evaluator):
    """TFX's Evaluator (same inputs, outputs and parameters), baseline-lookup aware."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(Executor)
