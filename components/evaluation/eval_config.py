"""The TFMA EvalConfig of one served model: metrics, slices, blessing thresholds.

Two classes: binary metrics on P(class 1) (the book's cats vs dogs). More
classes: multi-class metrics on the probabilities of every class (accuracy,
top-k accuracy, cross-entropy, the multi-class confusion matrix). The class
count is the data's, known when the Evaluator runs: for_classes() turns a
config of the other kind into the right one, keeping its blessing thresholds.
"""
from typing import Dict

from tensorflow_model_analysis.proto import config_pb2

from components import contract
from components.evaluation import metrics as custom_metrics
from components.evaluation.thresholds import BlessingThresholds

ACCURACY_METRIC = "binary_accuracy"
DECISION_THRESHOLD = 0.5
"""P(class 1) at or above which an image is called class 1 (Keras' rule)."""
MULTICLASS_ACCURACY_METRIC = "sparse_categorical_accuracy"
TOP_K_ACCURACY_METRIC = "sparse_top_k_categorical_accuracy"
TOP_K = 3
"""Top-k accuracy is computed when there are more than k classes (ten digits: top-3)."""
ACCURACY_CLASS_NAMES = {"BinaryAccuracy": ACCURACY_METRIC,
                        "SparseCategoricalAccuracy": MULTICLASS_ACCURACY_METRIC}
"""The metric each kind of config gates blessing on: TFMA class name -> metric name."""
ROC_THRESHOLDS = 100
"""Thresholds of TFMA's ConfusionMatrixPlot, the ROC curve the KFP UI draws."""
MULTICLASS_CONFUSION = "MultiClassConfusionMatrixAtThresholds"
ARGMAX_THRESHOLD = 0.0
"""Multi-class confusion matrix threshold: every image counts as its top class."""


def _metric(class_name: str, config: str = "", overall_threshold=None, module: str = ""
            ) -> config_pb2.MetricConfig:
    """A metric; a threshold applies to the overall slice only (MetricConfig.threshold
    would also be checked on every per-label slice)."""
    metric = config_pb2.MetricConfig(class_name=class_name, config=config, module=module)
    if overall_threshold is not None:
        metric.per_slice_thresholds.add(
            slicing_specs=[config_pb2.SlicingSpec()], threshold=overall_threshold)
    return metric


def accuracy_threshold(thresholds: BlessingThresholds) -> config_pb2.MetricThreshold:
    return config_pb2.MetricThreshold(
        value_threshold=config_pb2.GenericValueThreshold(
            lower_bound={"value": thresholds.min_accuracy}),
        change_threshold=config_pb2.GenericChangeThreshold(
            direction=config_pb2.MetricDirection.HIGHER_IS_BETTER,
            absolute={"value": -thresholds.max_accuracy_drop}),
    )

def build_eval_config(thresholds: BlessingThresholds, n_classes: int = 2) -> config_pb2.EvalConfig:
    """Binary metrics on the model's tf.Example signature, overall and by label
    (multi-class metrics for more than two classes, see build_multiclass_eval_config).

    The signature decodes and resizes raw examples itself (the Transform graph
    is inside the exported model), so TFMA reads the raw test split.
    """
    if n_classes > 2:
        return build_multiclass_eval_config(thresholds, n_classes)
    confusion = f'"thresholds": [{DECISION_THRESHOLD}]'
    metrics = [
        _metric("ExampleCount"),
        _metric("BinaryAccuracy", overall_threshold=accuracy_threshold(thresholds)),
        _metric("AUC"),
        _metric("Precision"),
        _metric("Recall"),
        _metric(custom_metrics.ClippedBinaryCrossEntropy.__name__, module=custom_metrics.__name__),
        _metric("Calibration"),
        _metric("MeanLabel"),
        _metric("MeanPrediction"),
        _metric("ConfusionMatrixAtThresholds", "{" + confusion + "}"),
        _metric("CalibrationPlot"),
        _metric("ConfusionMatrixPlot", f'{{"num_thresholds": {ROC_THRESHOLDS}}}'),
    ]
    return _eval_config(contract.POSITIVE_PROBABILITY_KEY, metrics)


def _eval_config(prediction_key: str, metrics) -> config_pb2.EvalConfig:
    """The model's tf.Example signature, overall and by-label slices, these metrics."""
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=contract.EXAMPLES_SIGNATURE,
            label_key=contract.LABEL_KEY,
            prediction_key=prediction_key,
        )],
        slicing_specs=[config_pb2.SlicingSpec(), config_pb2.SlicingSpec(feature_keys=[contract.LABEL_KEY])],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )


def build_multiclass_eval_config(thresholds: BlessingThresholds, n_classes: int) -> config_pb2.EvalConfig:
    """Multi-class metrics on `probabilities` [batch, n_classes], overall and by label
    (a label slice's accuracy is that class's recall): accuracy (gates blessing),
    top-k accuracy when there are more than TOP_K classes, cross-entropy and the
    confusion matrix of true against predicted (top) class."""
    if n_classes < 3:
        raise ValueError(f"multi-class metrics need at least three classes, got {n_classes}")
    metrics = [
        _metric("ExampleCount"),
        _metric("SparseCategoricalAccuracy", overall_threshold=accuracy_threshold(thresholds)),
    ]
    if n_classes > TOP_K:
        metrics.append(_metric("SparseTopKCategoricalAccuracy", f'"k": {TOP_K}'))
    metrics += [
        _metric("SparseCategoricalCrossentropy"),
        _metric(MULTICLASS_CONFUSION, f'"thresholds": [{ARGMAX_THRESHOLD}]'),
    ]
    return _eval_config(contract.PROBABILITIES_KEY, metrics)


def is_multiclass(config: config_pb2.EvalConfig) -> bool:
    return any(spec.prediction_key == contract.PROBABILITIES_KEY for spec in config.model_specs)


def threshold_values(config: config_pb2.EvalConfig) -> Dict[str, float]:
    """The accuracy thresholds a config holds, by BlessingThresholds field name:
    min_accuracy (a lower bound) and max_accuracy_drop (an absolute change
    allowed below the baseline, higher being better); absent ones are left out."""
    found: Dict[str, float] = {}
    for spec in config.metrics_specs:
        for metric in spec.metrics:
            if metric.class_name not in ACCURACY_CLASS_NAMES:
                continue
            for threshold in [metric.threshold] + [t.threshold for t in metric.per_slice_thresholds]:
                if threshold.value_threshold.HasField("lower_bound"):
                    found["min_accuracy"] = threshold.value_threshold.lower_bound.value
                change = threshold.change_threshold
                if change.HasField("absolute") and change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER:
                    found["max_accuracy_drop"] = -change.absolute.value
    return found


def blessing_thresholds(config: config_pb2.EvalConfig) -> BlessingThresholds:
    """The accuracy floor and allowed drop a config gates blessing on."""
    found = threshold_values(config)
    if "min_accuracy" not in found:
        raise ValueError("the EvalConfig has no accuracy threshold (BinaryAccuracy or "
                         "SparseCategoricalAccuracy with a lower bound) to carry over")
    return BlessingThresholds(**found)


def for_classes(config: config_pb2.EvalConfig, n_classes: int) -> config_pb2.EvalConfig:
    """`config` itself when it suits n_classes; otherwise the config of the right
    kind (binary or multi-class) with the same blessing thresholds."""
    if is_multiclass(config) == (n_classes > 2):
        return config
    return build_eval_config(blessing_thresholds(config), n_classes)

