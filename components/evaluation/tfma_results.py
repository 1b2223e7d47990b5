"""TFMA's output read back for the report: scalar metrics and confusion
matrices per slice, and the blessing thresholds the Evaluator applied."""
import dataclasses
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
import tensorflow_model_analysis as tfma
from tensorflow_model_analysis.writers import eval_config_writer

from components import contract
from components.evaluation.eval_config import ACCURACY_METRIC, MULTICLASS_ACCURACY_METRIC, threshold_values


@dataclasses.dataclass
class SliceMetrics:
    """Scalar metrics of one slice, keyed by (model name, metric name, is_diff)."""
    scalars: Dict[Tuple[str, str, bool], float] = dataclasses.field(default_factory=dict)
    confusion: Dict[str, Dict[str, float]] = dataclasses.field(default_factory=dict)
    """Binary models: tp/fp/tn/fn at DECISION_THRESHOLD, by model."""
    class_confusion: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    """Multi-class models: counts [true class, predicted class], by model."""

    def get(self, metric: str, model: str = "", diff: bool = False) -> Optional[float]:
        for candidate_model in ((model,) if model else ("", tfma.CANDIDATE_KEY)):
            value = self.scalars.get((candidate_model, metric, diff))
            if value is not None:
                return value
        return None


def slice_name(slice_key, class_names: Sequence[str]) -> str:
    if not slice_key.single_slice_keys:
        return "overall"
    parts = []
    for key in slice_key.single_slice_keys:
        value = key.int64_value if key.HasField("int64_value") else (
            key.bytes_value.decode() if key.HasField("bytes_value") else key.float_value)
        if key.column == contract.LABEL_KEY and isinstance(value, int) and 0 <= value < len(class_names):
            value = class_names[value]
        parts.append(f"{key.column}={value}")
    return ", ".join(parts)


def load_tfma_metrics(evaluation_uri: str, class_names: Sequence[str]) -> Dict[str, SliceMetrics]:
    slices: Dict[str, SliceMetrics] = {}
    for metrics_for_slice in tfma.load_metrics(evaluation_uri):
        entry = slices.setdefault(slice_name(metrics_for_slice.slice_key, class_names), SliceMetrics())
        for item in metrics_for_slice.metric_keys_and_values:
            key, value = item.key, item.value
            if value.HasField("double_value"):
                entry.scalars[(key.model_name, key.name, key.is_diff)] = value.double_value.value
            elif value.HasField("confusion_matrix_at_thresholds") and not key.is_diff:
                matrices = value.confusion_matrix_at_thresholds.matrices
                if matrices:
                    m = matrices[0]
                    entry.confusion[key.model_name or tfma.CANDIDATE_KEY] = {
                        "tp": m.true_positives, "fp": m.false_positives,
                        "tn": m.true_negatives, "fn": m.false_negatives}
            elif value.HasField("multi_class_confusion_matrix_at_thresholds") and not key.is_diff:
                matrices = value.multi_class_confusion_matrix_at_thresholds.matrices
                if matrices:
                    entry.class_confusion[key.model_name or tfma.CANDIDATE_KEY] = \
                        class_confusion_matrix(matrices[0], len(class_names))
    return slices


def class_confusion_matrix(matrix, n_classes: int) -> np.ndarray:
    """TFMA's multi-class confusion entries -> counts [true class, predicted class]."""
    counts = np.zeros((n_classes, n_classes))
    for entry in matrix.entries:
        if 0 <= entry.actual_class_id < n_classes and 0 <= entry.predicted_class_id < n_classes:
            counts[entry.actual_class_id, entry.predicted_class_id] += entry.num_weighted_examples
    return counts


def binary_confusion_matrix(confusion: Dict[str, float]) -> np.ndarray:
    """tp/fp/tn/fn -> counts [true class, predicted class] (class 1 is the positive one)."""
    return np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])


def accuracy_metric_of(slices: Dict[str, SliceMetrics]) -> str:
    """The accuracy the evaluation gates on: binary or multi-class (sparse categorical)."""
    overall = slices.get("overall", SliceMetrics())
    return MULTICLASS_ACCURACY_METRIC if overall.get(MULTICLASS_ACCURACY_METRIC) is not None \
        else ACCURACY_METRIC


def accuracy_thresholds(evaluation_uri: str) -> Dict[str, float]:
    """min accuracy / allowed drop as the Evaluator applied them (its eval_config.json)."""
    return threshold_values(eval_config_writer.load_eval_run(evaluation_uri)[0])
