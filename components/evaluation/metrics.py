"""Binary cross-entropy that survives saturated probabilities.

TFMA 0.52's BinaryCrossEntropy takes log(p) unclipped, so a single prediction
of exactly 0.0 or 1.0 (a float32 sigmoid saturates for confident images, as the
fine-tuned VGG16 does on the full test split) turns the metric into NaN. Keras
clips probabilities to [1e-7, 1 - 1e-7] before the log; so does this metric,
which makes it equal to the training loss Keras reports.
"""
from typing import Dict, Optional

import numpy as np
from tensorflow_model_analysis.metrics import cross_entropy_metrics, metric_types, metric_util
from tensorflow_model_analysis.proto import config_pb2

KERAS_EPSILON = 1e-7
METRIC_NAME = cross_entropy_metrics.BINARY_CROSSENTROPY_NAME


class _ClippedBinaryCrossEntropyCombiner(cross_entropy_metrics._BinaryCrossEntropyCombiner):  # pylint: disable=protected-access

    def _cross_entropy(self, label: np.ndarray, prediction: np.ndarray) -> float:
        if not self._from_logits:
            prediction = np.clip(prediction, KERAS_EPSILON, 1.0 - KERAS_EPSILON)
        return super()._cross_entropy(label, prediction)


def _computations(name: Optional[str] = None, from_logits: bool = False, label_smoothing: float = 0.0,
                  eval_config: Optional[config_pb2.EvalConfig] = None, model_name: Optional[str] = None,
                  output_name: Optional[str] = None, example_weighted: bool = False,
                  sub_key: Optional[metric_types.SubKey] = None,
                  aggregation_type: Optional[metric_types.AggregationType] = None,
                  class_weights: Optional[Dict[int, float]] = None) -> metric_types.MetricComputations:
    key = metric_types.MetricKey(name=name, model_name=model_name, output_name=output_name,
                                 sub_key=sub_key, example_weighted=example_weighted)
    return [metric_types.MetricComputation(
        keys=[key], preprocessors=None,
        combiner=_ClippedBinaryCrossEntropyCombiner(
            from_logits=from_logits, label_smoothing=label_smoothing, eval_config=eval_config,
            model_name=model_name, output_name=output_name, metric_key=key,
            example_weighted=example_weighted, aggregation_type=aggregation_type,
            class_weights=class_weights))]


class ClippedBinaryCrossEntropy(metric_types.Metric):
    """TFMA's BinaryCrossEntropy with Keras' clipping of probabilities."""

    def __init__(self, name: str = METRIC_NAME, from_logits: bool = False, label_smoothing: float = 0.0):
        super().__init__(metric_util.merge_per_key_computations(_computations), name=name,
                         from_logits=from_logits, label_smoothing=label_smoothing)


metric_types.register_metric(ClippedBinaryCrossEntropy)
