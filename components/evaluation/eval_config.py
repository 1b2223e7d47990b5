"""The TFMA EvalConfig of one served model: metrics, slices, blessing thresholds."""
from tensorflow_model_analysis.proto import config_pb2

from components import contract
from components.evaluation.thresholds import BlessingThresholds

ACCURACY_METRIC = "binary_accuracy"
DECISION_THRESHOLD = 0.5
"""P(class 1) at or above which an image is called class 1 (Keras' rule)."""


def _metric(class_name: str, config: str = "", overall_threshold=None) -> config_pb2.MetricConfig:
    """A metric; a threshold applies to the overall slice only (MetricConfig.threshold
    would also be checked on every per-label slice)."""
    metric = config_pb2.MetricConfig(class_name=class_name, config=config)
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

def build_eval_config(thresholds: BlessingThresholds) -> config_pb2.EvalConfig:
    """Binary metrics on the model's tf.Example signature, overall and by label.

    The signature decodes and resizes raw examples itself (the Transform graph
    is inside the exported model), so TFMA reads the raw test split.
    """
    confusion = f'"thresholds": [{DECISION_THRESHOLD}]'
    metrics = [
        _metric("ExampleCount"),
        _metric("BinaryAccuracy", overall_threshold=accuracy_threshold(thresholds)),
        _metric("AUC"),
        _metric("Precision"),
        _metric("Recall"),
        _metric("BinaryCrossEntropy"),
        _metric("Calibration"),
        _metric("MeanLabel"),
        _metric("MeanPrediction"),
        _metric("ConfusionMatrixAtThresholds", "{" + confusion + "}"),
        _metric("CalibrationPlot"),
    ]
    return config_pb2.EvalConfig(
        model_specs=[config_pb2.ModelSpec(
            signature_name=contract.EXAMPLES_SIGNATURE,
            label_key=contract.LABEL_KEY,
            prediction_key=contract.POSITIVE_PROBABILITY_KEY,
        )],
        slicing_specs=[
            config_pb2.SlicingSpec(),
            config_pb2.SlicingSpec(feature_keys=[contract.LABEL_KEY]),
        ],
        metrics_specs=[config_pb2.MetricsSpec(metrics=metrics)],
    )
