"""EvaluationReport: one self-contained HTML page per evaluated model version.

Metric table (overall and per label, with the baseline beside it), confusion
matrix picture, the blessing decision and why, and the worst-classified test
images as thumbnails. Pictures are embedded (data: URIs) so the page is a
single file: KFP's UI renders an artifact of type system.HTML from its URI,
and locally `catsdogs run-local` prints the path of the same file.
"""
import base64
import dataclasses
import html
import io
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_model_analysis as tfma
from absl import logging
from tensorflow_model_analysis.proto import config_pb2
from tensorflow_model_analysis.writers import eval_config_writer
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import standard_artifacts
from tfx.utils import path_utils

from components import contract, html_artifact
from components.evaluation import baseline as baseline_lookup
from components.evaluation import decision as blessing_decision
from components.evaluation import examples_io
from components.evaluation.eval_config import (ACCURACY_CLASS_NAMES, ACCURACY_METRIC, DECISION_THRESHOLD,
                                               MULTICLASS_ACCURACY_METRIC, TOP_K_ACCURACY_METRIC)

REPORT_FILE = "evaluation_report.html"
REPORT_PATH_PROPERTY = "report_html"
MODEL_NAME_PROPERTY = "model_name"
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
SERVING_BATCH_SIZE = 32
THUMBNAIL_SIZE = 128
ACCURACY_TOLERANCE = 1e-6


def write_page(page: str, uri: str) -> str:
    """Writes the page at the URI (KFP) or into it (a local directory); returns its path."""
    path = html_artifact.page_path(uri, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as file:
        file.write(page)
    return path


# -- TFMA results ---------------------------------------------------------------

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


def accuracy_metric_of(slices: Dict[str, SliceMetrics]) -> str:
    """The accuracy the evaluation gates on: binary or multi-class (sparse categorical)."""
    overall = slices.get("overall", SliceMetrics())
    return MULTICLASS_ACCURACY_METRIC if overall.get(MULTICLASS_ACCURACY_METRIC) is not None \
        else ACCURACY_METRIC


def accuracy_thresholds(evaluation_uri: str) -> Dict[str, float]:
    """min accuracy / allowed drop as the Evaluator applied them (its eval_config.json)."""
    eval_config = eval_config_writer.load_eval_run(evaluation_uri)[0]
    found: Dict[str, float] = {}
    for spec in eval_config.metrics_specs:
        for metric in spec.metrics:
            thresholds = [metric.threshold] + [t.threshold for t in metric.per_slice_thresholds]
            if metric.class_name not in ACCURACY_CLASS_NAMES:
                continue
            for threshold in thresholds:
                if threshold.value_threshold.HasField("lower_bound"):
                    found["min_accuracy"] = threshold.value_threshold.lower_bound.value
                change = threshold.change_threshold
                if change.HasField("absolute") and \
                        change.direction == config_pb2.MetricDirection.HIGHER_IS_BETTER:
                    found["max_accuracy_drop"] = -change.absolute.value
    return found


# -- direct predictions through the serving signature -----------------------------

@dataclasses.dataclass(frozen=True)
class ScoredImage:
    image: examples_io.LabelledImage
    probability_of_label: float
    predicted: int
    """The top class (argmax of the served probabilities)."""


def score_test_images(saved_model_dir: str, examples_uri: str) -> List[ScoredImage]:
    """P(true class) of every test image through serving_default (image bytes in)."""
    serve = tf.saved_model.load(saved_model_dir).signatures[contract.SERVING_SIGNATURE]
    images = list(examples_io.read_images(examples_uri, contract.TEST_SPLIT))
    scored = []
    for start in range(0, len(images), SERVING_BATCH_SIZE):
        batch = images[start:start + SERVING_BATCH_SIZE]
        outputs = serve(**{contract.SERVING_INPUT_KEY: tf.constant([i.image_bytes for i in batch])})
        probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
        scored += [ScoredImage(image, float(probabilities[row, image.label]),
                               int(np.argmax(probabilities[row])))
                   for row, image in enumerate(batch)]
    return scored


def worst_classified(scored: Sequence[ScoredImage], count: int) -> List[ScoredImage]:
    """Largest cross-entropy first: lowest probability given to the true class."""
    return sorted(scored, key=lambda s: s.probability_of_label)[:count]


# -- pictures ---------------------------------------------------------------------

def _png_data_uri(figure) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def binary_confusion_matrix(confusion: Dict[str, float]) -> np.ndarray:
    """tp/fp/tn/fn -> counts [true class, predicted class] (class 1 is the positive one)."""
    return np.array([[confusion["tn"], confusion["fp"]], [confusion["fn"], confusion["tp"]]])


def confusion_matrix_png(matrix: np.ndarray, class_names: Sequence[str], title: str) -> str:
    """Counts [true class, predicted class] as a picture labelled with the class names."""
    import matplotlib
    matplotlib.use("Agg")
    from matplotlib import pyplot as plt
    n = len(matrix)
    side = max(3.6, 0.55 * n + 1.5)
    figure, axes = plt.subplots(figsize=(side, side * 0.9))
    axes.imshow(matrix, cmap="Blues")
    for row in range(n):
        for col in range(n):
            axes.text(col, row, f"{int(matrix[row, col])}", ha="center", va="center",
                      color="white" if matrix[row, col] > matrix.max() / 2 else "black",
                      fontsize=14 if n <= 3 else 9)
    if n <= 3:
        axes.set_xticks(range(n), [f"predicted {name}" for name in class_names[:n]])
        axes.set_yticks(range(n), [f"true {name}" for name in class_names[:n]])
    else:
        axes.set_xticks(range(n), list(class_names[:n]), rotation=90 if max(map(len, class_names)) > 3 else 0)
        axes.set_yticks(range(n), list(class_names[:n]))
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
    axes.set_title(title)
    uri = _png_data_uri(figure)
    plt.close(figure)
    return uri


def thumbnail_data_uri(image_bytes: bytes) -> str:
    from PIL import Image
    image = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    if max(image.size) < THUMBNAIL_SIZE // 2:  # e.g. 28x28 digits: enlarge, keep the pixels sharp
        scale = THUMBNAIL_SIZE // max(image.size)
        image = image.resize((image.width * scale, image.height * scale), Image.NEAREST)
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode()


# -- the page -------------------------------------------------------------------

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


def _fmt(value: Optional[float], metric: str = "") -> str:
    if value is None or np.isnan(value):
        return "–"
    return f"{int(value)}" if metric in COUNT_METRICS else f"{value:+.4f}" if metric == "change" \
        else f"{value:.4f}"


def render_html(r: ReportInputs) -> str:
    e = html.escape
    overall = r.slices.get("overall", SliceMetrics())
    label_slices = [name for name in r.slices if name != "overall"]
    has_baseline = any(model == tfma.BASELINE_KEY for model, _, _ in overall.scalars)
    blessed = r.decision.blessed if r.decision else None
    verdict = {True: "BLESSED", False: "NOT BLESSED", None: "NO DECISION"}[blessed]
    colour = {True: "#1a7f37", False: "#cf222e", None: "#6e7781"}[blessed]

    accuracy = r.accuracy_metric
    multiclass = accuracy == MULTICLASS_ACCURACY_METRIC
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

    header = ["metric", *(["overall"] + label_slices)]
    if has_baseline:
        header += ["baseline (overall)", "change"]
    rows = []
    table_metrics, per_label_metrics = ((MULTICLASS_TABLE_METRICS, MULTICLASS_PER_LABEL_METRICS) if multiclass
                                        else (TABLE_METRICS, PER_LABEL_METRICS))
    for metric in table_metrics:
        if multiclass and overall.get(metric) is None:
            continue  # top-k accuracy only with more than k classes
        cells = [_fmt(overall.get(metric), metric)] + [
            _fmt(r.slices[name].get(metric) if metric in per_label_metrics else None, metric)
            for name in label_slices]
        if has_baseline:
            cells += [_fmt(overall.get(metric, tfma.BASELINE_KEY), metric),
                      _fmt(overall.get(metric, tfma.CANDIDATE_KEY, diff=True), "change")]
        rows.append("<tr><th>" + e(metric) + "</th>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")

    if multiclass:
        matrix = overall.class_confusion.get(tfma.CANDIDATE_KEY)
        if matrix is None:
            matrix = next(iter(overall.class_confusion.values()), None)
        title = "test split, top class"
    else:
        confusion = overall.confusion.get(tfma.CANDIDATE_KEY) or next(iter(overall.confusion.values()), None)
        matrix = binary_confusion_matrix(confusion) if confusion else None
        title = f"test split, threshold {DECISION_THRESHOLD}"
    confusion_html = (f'<img alt="confusion matrix" src="{confusion_matrix_png(matrix, r.class_names, title)}">'
                      if matrix is not None else "<p>No confusion matrix in the evaluation.</p>")

    tfma_accuracy = overall.get(accuracy)
    check = ""
    if r.serving_accuracy is not None and tfma_accuracy is not None:
        agree = abs(r.serving_accuracy - tfma_accuracy) <= ACCURACY_TOLERANCE
        check = (f"<p>Accuracy through <code>{contract.SERVING_SIGNATURE}</code> on the image bytes: "
                 f"{r.serving_accuracy:.4f}; TFMA through <code>{contract.EXAMPLES_SIGNATURE}</code>: "
                 f"{tfma_accuracy:.4f} — " + ("they agree." if agree else
                                              "<b>they DISAGREE: the two signatures differ.</b>") + "</p>")

    figures = "".join(
        f'<figure><img src="{thumbnail_data_uri(s.image.image_bytes)}" alt="{e(s.image.filename)}">'
        f"<figcaption>{e(s.image.filename)}<br>true: {e(r.class_names[s.image.label])}<br>"
        f"predicted: {e(r.class_names[s.predicted])}<br>"
        f"P(true) = {s.probability_of_label:.3f}</figcaption></figure>" for s in r.worst)

    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{e(r.model_name)} evaluation</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; max-width: 70em; }}
table {{ border-collapse: collapse; }} td, th {{ border: 1px solid #ccc; padding: 3px 8px; text-align: right; }}
.verdict {{ font-size: 1.4em; font-weight: bold; color: {colour}; }}
figure {{ display: inline-block; margin: 4px; font-size: 0.8em; width: {THUMBNAIL_SIZE + 8}px; vertical-align: top; }}
</style></head><body>
<h1>{e(r.model_name)}: evaluation on the test split</h1>
<p class="verdict">{verdict}</p>
<ul>{"".join(f"<li>{e(line)}</li>" for line in reasons)}</ul>
<h2>Metrics</h2>
<table><tr>{"".join(f"<th>{e(h)}</th>" for h in header)}</tr>{"".join(rows)}</table>
{check}
<h2>Confusion matrix</h2>
{confusion_html}
<h2>{len(r.worst)} worst-classified test images</h2>
<p>Lowest probability given to the true class, through the serving signature.</p>
{figures}
</body></html>
"""


def build_report(model_dir: str, evaluation_uri: str, blessing_uri: str, baseline_uri: Optional[str],
                 examples_uri: str, model_name: str, num_worst_images: int) -> Tuple[str, ReportInputs]:
    class_names = examples_io.class_names(examples_uri)
    baseline = (baseline_lookup.read_baseline_info_at(baseline_uri) if baseline_uri
                else baseline_lookup.BaselineInfo(False, "no baseline input"))
    scored = score_test_images(model_dir, examples_uri)
    serving_accuracy = (float(np.mean([s.predicted == s.image.label for s in scored])) if scored else None)
    slices = load_tfma_metrics(evaluation_uri, class_names)
    inputs = ReportInputs(
        model_name=model_name, class_names=class_names, slices=slices,
        thresholds=accuracy_thresholds(evaluation_uri),
        decision=blessing_decision.read_decision(blessing_uri), accuracy_metric=accuracy_metric_of(slices),
        baseline=baseline,
        worst=worst_classified(scored, num_worst_images), serving_accuracy=serving_accuracy)
    return render_html(inputs), inputs


@component
def EvaluationReport(
        model: InputArtifact[standard_artifacts.Model],
        evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
        model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
        baseline_model: InputArtifact[standard_artifacts.Model],
        examples: InputArtifact[standard_artifacts.Examples],
        report: OutputArtifact[html_artifact.HtmlPage],
        model_name: Parameter[str],
        num_worst_images: Parameter[int] = 10,
) -> None:
    """Writes the HTML page as the report artifact."""
    page, _ = build_report(
        model_dir=path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        evaluation_uri=evaluation.uri, blessing_uri=model_blessing.uri, baseline_uri=baseline_model.uri,
        examples_uri=examples.uri, model_name=model_name, num_worst_images=num_worst_images)
    path = write_page(page, report.uri)
    report.set_string_custom_property(REPORT_PATH_PROPERTY, path)
    report.set_string_custom_property("display_name", f"evaluation of {model_name}")
    report.set_string_custom_property(MODEL_NAME_PROPERTY, model_name)
    logging.info("Evaluation report for %s: %s", model_name, path)
