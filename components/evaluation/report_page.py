"""The evaluation report's HTML page (template:
components/html_pages/templates/evaluation_report.html): the blessing
decision and why, the metric table (overall and per label, with the baseline
beside it), the accuracy this model's recipes reached over seeds on the full data
(this run's recipe marked), the confusion matrix picture and the worst-classified
test images."""
import dataclasses
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow_model_analysis as tfma

from components import contract, html_pages
from components.evaluation import baseline as baseline_lookup
from components.evaluation import decision as blessing_decision
from components.evaluation import recorded_accuracy
from components.evaluation.eval_config import (
    ACCURACY_METRIC,
    DECISION_THRESHOLD,
    MULTICLASS_ACCURACY_METRIC,
    TOP_K_ACCURACY_METRIC,
)
from components.evaluation.served_scores import ScoredImage
from components.evaluation.tfma_results import SliceMetrics, binary_confusion_matrix
from components.html_pages import pictures

TEMPLATE = "evaluation_report.html"
TABLE_METRICS = ("example_count", ACCURACY_METRIC, "auc", "precision", "recall",
                 "binary_crossentropy", "calibration", "mean_label", "mean_prediction")
PER_LABEL_METRICS = ("example_count", ACCURACY_METRIC, "binary_crossentropy", "mean_prediction")
"""On a one-class slice AUC, precision and calibration are undefined; not shown."""
MULTICLASS_TABLE_METRICS = ("example_count", MULTICLASS_ACCURACY_METRIC, TOP_K_ACCURACY_METRIC,
                            "sparse_categorical_crossentropy")
MULTICLASS_PER_LABEL_METRICS = ("example_count", MULTICLASS_ACCURACY_METRIC,
                                "sparse_categorical_crossentropy")
"""A label slice's accuracy is the recall of that class."""
COUNT_METRICS = ("example_count",)
THUMBNAIL_SIZE = 128
ACCURACY_TOLERANCE = 1e-6
VERDICTS = {True: ("BLESSED", "#1a7f37"), False: ("NOT BLESSED", "#cf222e"), None: ("NO DECISION", "#6e7781")}


@dataclasses.dataclass
class ReportInputs:
    model_name: str
    class_names: List[str]
    slices: Dict[str, SliceMetrics]
    thresholds: Dict[str, float]
    decision: Optional[blessing_decision.BlessingDecision]
    accuracy_metric: str
    baseline: baseline_lookup.BaselineInfo
    worst: List[ScoredImage]
    serving_accuracy: Optional[float]
    recorded: Optional[recorded_accuracy.Comparison] = None
    """The model's recorded recipes and this run's (None: the model has no record to compare)."""


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str], title: str) -> str:
    """Counts [true class, predicted class] as a picture labelled with the class
    names (scikit-learn's ConfusionMatrixDisplay), as a PNG data URI."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay
    n = len(matrix)
    side = max(3.6, 0.55 * n + 1.5)
    few = n <= 3
    figure, axes = plt.subplots(figsize=(side, side * 0.9))
    rotation = "horizontal" if few or max(map(len, class_names)) <= 3 else "vertical"
    counts = np.asarray(matrix).astype(int)
    display = ConfusionMatrixDisplay(counts, display_labels=list(class_names[:n])).plot(
        ax=axes, cmap="Blues", colorbar=False, values_format="d", xticks_rotation=rotation,
        text_kw={"fontsize": 14 if few else 9})
    for text, count in zip(display.text_.ravel(), counts.ravel()):  # black, not the colour map's darkest blue
        text.set_color("white" if count > counts.max() / 2 else "black")
    if few:
        axes.set_xticks(range(n), [f"predicted {name}" for name in class_names[:n]])
        axes.set_yticks(range(n), [f"true {name}" for name in class_names[:n]])
        axes.set_xlabel("")
        axes.set_ylabel("")
    else:
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
    axes.set_title(title)
    uri = pictures.figure_data_uri(figure)
    plt.close(figure)
    return uri


def _fmt(value: Optional[float], metric: str = "") -> str:
    if value is None or np.isnan(value):
        return "–"
    return f"{int(value)}" if metric in COUNT_METRICS else f"{value:+.4f}" if metric == "change" \
        else f"{value:.4f}"


def _reasons(r: ReportInputs, overall: SliceMetrics) -> List[str]:
    accuracy = r.accuracy_metric
    reasons = []
    if "min_accuracy" in r.thresholds:
        reasons.append(f"Value threshold: {accuracy} ≥ {r.thresholds['min_accuracy']:.4f} (overall).")
    if "max_accuracy_drop" in r.thresholds:
        reasons.append(f"Change threshold: {accuracy} may drop at most "
                       f"{r.thresholds['max_accuracy_drop']:.4f} below the baseline.")
    if r.baseline.found:
        base_acc = overall.get(accuracy, tfma.BASELINE_KEY)
        reasons.append(f"Baseline: version {r.baseline.version} ({r.baseline.source}), "
                       f"{accuracy} {_fmt(base_acc)}.")
    elif r.baseline.unusable:
        reasons.append(f"Baseline UNUSABLE, treated as no baseline: {r.baseline.reason}. "
                       "The change threshold was not applied.")
    else:
        reasons.append(f"No baseline: {r.baseline.reason}. The change threshold was not applied.")
    if r.decision:
        reasons += [f"FAILED: {f.describe()}" for f in r.decision.failures]
        reasons += list(r.decision.notes)
        if r.decision.blessed:
            reasons.append("All thresholds met.")
    return reasons


def _confusion_picture(r: ReportInputs, overall: SliceMetrics) -> Optional[str]:
    if r.accuracy_metric == MULTICLASS_ACCURACY_METRIC:
        matrix = overall.class_confusion.get(tfma.CANDIDATE_KEY)
        if matrix is None:
            matrix = next(iter(overall.class_confusion.values()), None)
        title = "test split, top class"
    else:
        confusion = overall.confusion.get(tfma.CANDIDATE_KEY) or next(iter(overall.confusion.values()), None)
        matrix = binary_confusion_matrix(confusion) if confusion else None
        title = f"test split, threshold {DECISION_THRESHOLD}"
    return confusion_matrix_png(matrix, r.class_names, title) if matrix is not None else None


def _recorded_summary(r: ReportInputs, overall: SliceMetrics) -> Optional[Dict]:
    """This run's accuracy and recipe against the recorded seeds: sentences, and one table
    row per recorded recipe (this run's marked)."""
    recorded = r.recorded
    if recorded is None:
        return None
    accuracy, count = overall.get(r.accuracy_metric), overall.get("example_count")
    same = recorded.same_recipe
    lines = []
    if recorded.run_changes is None:
        lines.append("This run's hyper-parameters are unknown (no training report), so its recipe "
                     "cannot be matched with a recorded one.")
    else:
        lines.append(f"This run's recipe: {recorded_accuracy.describe(recorded.run_changes)}.")
    if not recorded.recipes:
        lines.append("No run of this model is recorded yet (benchmarks.seed_spread records them).")
    elif same is None and recorded.run_changes is not None:
        lines.append("No recorded run used this recipe: the table shows what the recorded ones reached, "
                     "which this run's accuracy need not match.")
    if same is not None and accuracy is not None and count:
        images = same.test_images
        if images != [int(count)]:
            lines.append(f"The recorded runs were evaluated on {', '.join(map(str, images))} test images, "
                         f"this run on {int(count)}: the accuracies are not comparable.")
        else:
            where = ("below every recorded seed" if accuracy < same.min else
                     "above every recorded seed" if accuracy > same.max else "within the recorded seeds' range")
            lines.append(f"{r.accuracy_metric} {accuracy:.1%} is {where} of this recipe "
                         f"({same.min:.1%}-{same.max:.1%} over {len(same.runs)} seeds).")
    rows = [{"recipe": recipe.describe(), "this_run": recipe is same,
             "seeds": ", ".join(map(str, recipe.seeds)),
             "spread": f"{recipe.mean:.1%} / {recipe.min:.1%} / {recipe.max:.1%}",
             "per_seed": ", ".join(f"{a:.1%}" for a in recipe.accuracies),
             "kept_epochs": ", ".join(recipe.kept_epochs), "minutes": ", ".join(map(str, recipe.minutes)),
             "test_images": ", ".join(map(str, recipe.test_images))}
            for recipe in recorded.recipes]
    return {"lines": lines, "rows": rows}


def render_html(r: ReportInputs) -> str:
    overall = r.slices.get("overall", SliceMetrics())
    label_slices = [name for name in r.slices if name != "overall"]
    has_baseline = any(model == tfma.BASELINE_KEY for model, _, _ in overall.scalars)
    verdict, colour = VERDICTS[r.decision.blessed if r.decision else None]

    header = ["metric", *(["overall"] + label_slices)]
    if has_baseline:
        header += ["baseline (overall)", "change"]
    multiclass = r.accuracy_metric == MULTICLASS_ACCURACY_METRIC
    table_metrics, per_label_metrics = ((MULTICLASS_TABLE_METRICS, MULTICLASS_PER_LABEL_METRICS) if multiclass
                                        else (TABLE_METRICS, PER_LABEL_METRICS))
    rows = []
    for metric in table_metrics:
        if multiclass and overall.get(metric) is None:
            continue  # top-k accuracy only with more than k classes
        cells = [_fmt(overall.get(metric), metric)] + [
            _fmt(r.slices[name].get(metric) if metric in per_label_metrics else None, metric)
            for name in label_slices]
        if has_baseline:
            cells += [_fmt(overall.get(metric, tfma.BASELINE_KEY), metric),
                      _fmt(overall.get(metric, tfma.CANDIDATE_KEY, diff=True), "change")]
        rows.append((metric, cells))

    tfma_accuracy = overall.get(r.accuracy_metric)
    signature_check = None
    if r.serving_accuracy is not None and tfma_accuracy is not None:
        signature_check = {
            "serving_signature": contract.SERVING_SIGNATURE, "serving_accuracy": r.serving_accuracy,
            "examples_signature": contract.EXAMPLES_SIGNATURE, "tfma_accuracy": tfma_accuracy,
            "agree": abs(r.serving_accuracy - tfma_accuracy) <= ACCURACY_TOLERANCE}

    worst = [{"picture": pictures.thumbnail_data_uri(s.image.image_bytes, THUMBNAIL_SIZE),
              "filename": s.image.filename, "true_class": r.class_names[s.image.label],
              "predicted_class": r.class_names[s.predicted], "probability_of_label": s.probability_of_label}
             for s in r.worst]
    return html_pages.render(
        TEMPLATE, model_name=r.model_name, verdict=verdict, verdict_colour=colour,
        thumbnail_size=THUMBNAIL_SIZE, reasons=_reasons(r, overall), header=header, rows=rows,
        signature_check=signature_check, recorded=_recorded_summary(r, overall),
        confusion_picture=_confusion_picture(r, overall), worst=worst)
