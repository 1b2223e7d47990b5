"""The evaluation as the KFP UI draws it: `system.Metrics` (scalars, shown in the
run view and in "Compare runs") and `system.ClassificationMetrics` (a confusion
matrix with the class names, and a ROC curve for two classes).

The UI reads them from the artifacts' MLMD custom properties
(frontend/src/components/viewers/MetricsVisualizations.tsx in
github.com/kubeflow/pipelines: artifacts of those type names, a `display_name`,
scalars as numbers, `confusionMatrix` and `confidenceMetrics` as structs), in
the layout the KFP SDK writes (kfp/dsl/types/artifact_types.py
ClassificationMetrics: `{"annotationSpecs": [{"displayName"}], "rows":
[{"row": [...]}]}` and `[{"confidenceThreshold", "recall",
"falsePositiveRate"}]`). A TFX artifact's custom properties travel the same
way: TFX's KFP entrypoint puts them into the executor output's metadata, and
the launcher stores metadata as custom properties. Locally they are the same
custom properties in the pipeline's MLMD.

The artifact types are components/kfp_ui_artifacts.py.
"""
from typing import Dict, List, Optional, Sequence

import tensorflow_model_analysis as tfma
from tfx.types import artifact

from components.evaluation import decision as blessing_decision
from components.evaluation import metrics as custom_metrics
from components.evaluation import tfma_results


def scalar_metrics(slices: Dict[str, tfma_results.SliceMetrics], accuracy_metric: str,
                   thresholds: Dict[str, float],
                   decision: Optional[blessing_decision.BlessingDecision]) -> Dict[str, float]:
    """The overall slice's numbers the UI lists: accuracy, AUC, loss, example
    count, the blessing verdict (1 blessed, 0 not) and its thresholds."""
    overall = slices["overall"]
    values = {
        "accuracy": overall.get(accuracy_metric),
        "auc": overall.get("auc"),
        "loss": overall.get(custom_metrics.METRIC_NAME) or overall.get("sparse_categorical_crossentropy"),
        "example_count": overall.get("example_count"),
        "blessed": None if decision is None else float(decision.blessed),
        "threshold_min_accuracy": thresholds.get("min_accuracy"),
        "threshold_max_accuracy_drop": thresholds.get("max_accuracy_drop"),
    }
    return {name: float(value) for name, value in values.items() if value is not None}


def confusion_matrix(overall: tfma_results.SliceMetrics, class_names: Sequence[str]) -> Optional[dict]:
    """Counts [true class][predicted class] of the candidate model, labelled."""
    if overall.class_confusion:
        counts = overall.class_confusion.get(tfma.CANDIDATE_KEY, next(iter(overall.class_confusion.values())))
    elif overall.confusion:
        counts = tfma_results.binary_confusion_matrix(
            overall.confusion.get(tfma.CANDIDATE_KEY, next(iter(overall.confusion.values()))))
    else:
        return None
    return {"annotationSpecs": [{"displayName": name} for name in class_names],
            "rows": [{"row": [int(round(count)) for count in row]} for row in counts]}


def confidence_metrics(evaluation_uri: str) -> List[dict]:
    """The ROC curve of the candidate on the overall slice, from TFMA's
    ConfusionMatrixPlot (eval_config.py; none for more than two
    classes). TFMA stores a slice's plots together, under an unnamed key."""
    for plots_for_slice in tfma.load_plots(evaluation_uri):
        if plots_for_slice.slice_key.single_slice_keys:
            continue
        for item in plots_for_slice.plot_keys_and_values:
            if (item.key.model_name not in ("", tfma.CANDIDATE_KEY)
                    or not item.value.HasField("confusion_matrix_at_thresholds")):
                continue
            return [{"confidenceThreshold": m.threshold, "recall": m.recall,
                     "falsePositiveRate": m.false_positive_rate}
                    for m in item.value.confusion_matrix_at_thresholds.matrices]
    return []


def record(metrics: artifact.Artifact, classification: artifact.Artifact, model_name: str,
           scalars: Dict[str, float], matrix: Optional[dict], roc: List[dict]) -> None:
    """Sets the custom properties the KFP UI reads on the two output artifacts."""
    for name, value in scalars.items():
        metrics.set_float_custom_property(name, value)
    metrics.set_string_custom_property("display_name", f"metrics of {model_name}")
    classification.set_string_custom_property("display_name", f"classification of {model_name}")
    if matrix:
        classification.set_json_value_custom_property("confusionMatrix", matrix)
    if roc:
        classification.set_json_value_custom_property("confidenceMetrics", roc)
