"""EvaluationReport: one self-contained HTML page per evaluated model version,
and the same evaluation as the metrics the KFP UI draws (ui_metrics.py).

This component gathers the page's inputs (TFMA's metrics and thresholds,
tfma_results.py; the blessing decision and the baseline; the test images
scored through the serving signature, served_scores.py) and writes the page
(report_page.py), with the accuracy this model's recipes reached over seeds on
the full data beside this run's recipe (recorded_accuracy.py). Pictures are
embedded (data: URIs) so the page is a single file: KFP's UI renders an
artifact of type system.HTML from its URI, and locally `catsdogs run-local`
prints the path of the same file.
"""
import json
import os
from typing import Any, Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
from absl import logging
from tfx.dsl.component.experimental.annotations import InputArtifact, OutputArtifact, Parameter
from tfx.dsl.component.experimental.decorators import component
from tfx.types import artifact_utils, standard_artifacts
from tfx.utils import path_utils

from components import contract, html_artifact, kfp_ui_artifacts
from components.evaluation import baseline as baseline_lookup
from components.evaluation import decision as blessing_decision
from components.evaluation import recorded_accuracy, served_scores, tfma_results, ui_metrics
from components.evaluation.report_page import ReportInputs, render_html
from components.formats import examples as examples_format

REPORT_FILE = "evaluation_report.html"
REPORT_PATH_PROPERTY = "report_html"
MODEL_NAME_PROPERTY = "model_name"


def write_page(page: str, uri: str) -> str:
    """Writes the page at the URI (KFP) or into it (a local directory); returns its path."""
    path = html_artifact.page_path(uri, REPORT_FILE)
    with tf.io.gfile.GFile(path, "w") as file:
        file.write(page)
    return path


def run_hparams(model_run_uri: Optional[str]) -> Optional[Dict[str, Any]]:
    """The hyper-parameters the Trainer recorded in its training report (None: no report)."""
    if not model_run_uri:
        return None
    path = os.path.join(model_run_uri, contract.TRAINING_REPORT_DIR, contract.TRAINING_HISTORY_FILE)
    if not tf.io.gfile.exists(path):
        logging.warning("No training report at %s: the run's recipe is unknown", path)
        return None
    with tf.io.gfile.GFile(path) as f:
        return json.load(f).get("hparams")


def build_report(model_dir: str, evaluation_uri: str, blessing_uri: str, baseline_uri: Optional[str],
                 examples: standard_artifacts.Examples, model_name: str,
                 num_worst_images: int, model_run_uri: Optional[str] = None,
                 model_package: str = "") -> Tuple[str, ReportInputs]:
    """`model_package`: the model's folder (its ModelSpec.package), whose recorded seeds the
    page compares this run's recipe with (from `model_run_uri`'s training report); "" for
    none."""
    class_names = examples_format.class_names(examples.uri)
    baseline = (baseline_lookup.read_baseline_info_at(baseline_uri) if baseline_uri
                else baseline_lookup.BaselineInfo(False, "no baseline input"))
    test_split_uri = artifact_utils.get_split_uri([examples], contract.TEST_SPLIT)
    scored = served_scores.score_test_images(model_dir, test_split_uri)
    serving_accuracy = (float(np.mean([s.predicted == s.image.label for s in scored])) if scored else None)
    slices = tfma_results.load_tfma_metrics(evaluation_uri, class_names)
    inputs = ReportInputs(
        model_name=model_name, class_names=class_names, slices=slices,
        thresholds=tfma_results.accuracy_thresholds(evaluation_uri),
        decision=blessing_decision.read_decision(blessing_uri),
        accuracy_metric=tfma_results.accuracy_metric_of(slices), baseline=baseline,
        worst=served_scores.worst_classified(scored, num_worst_images), serving_accuracy=serving_accuracy,
        recorded=recorded_accuracy.compare(model_package, run_hparams(model_run_uri)) if model_package else None)
    return render_html(inputs), inputs


@component
def EvaluationReport(
        model: InputArtifact[standard_artifacts.Model],
        evaluation: InputArtifact[standard_artifacts.ModelEvaluation],
        model_blessing: InputArtifact[standard_artifacts.ModelBlessing],
        baseline_model: InputArtifact[standard_artifacts.Model],
        examples: InputArtifact[standard_artifacts.Examples],
        report: OutputArtifact[html_artifact.HtmlPage],
        metrics: OutputArtifact[kfp_ui_artifacts.Metrics],
        classification_metrics: OutputArtifact[kfp_ui_artifacts.ClassificationMetrics],
        model_name: Parameter[str],
        num_worst_images: Parameter[int] = 10,
        model_run: InputArtifact[standard_artifacts.ModelRun] = None,
        model_package: Parameter[str] = "",
) -> None:
    """Writes the HTML page as the report artifact; the scalars, the confusion
    matrix and the ROC curve as the metrics artifacts. `model_run` (the Trainer's
    training report) and `model_package` (the model's folder) let the page set this
    run's accuracy beside its recipe's recorded seeds."""
    page, inputs = build_report(
        model_dir=path_utils.serving_model_path(model.uri, path_utils.is_old_model_artifact(model)),
        evaluation_uri=evaluation.uri, blessing_uri=model_blessing.uri, baseline_uri=baseline_model.uri,
        examples=examples, model_name=model_name, num_worst_images=num_worst_images,
        model_run_uri=model_run.uri if model_run else None, model_package=model_package)
    path = write_page(page, report.uri)
    report.set_string_custom_property(REPORT_PATH_PROPERTY, path)
    report.set_string_custom_property("display_name", f"evaluation of {model_name}")
    report.set_string_custom_property(MODEL_NAME_PROPERTY, model_name)
    logging.info("Evaluation report for %s: %s", model_name, path)
    ui_metrics.record(
        metrics, classification_metrics, model_name,
        ui_metrics.scalar_metrics(inputs.slices, inputs.accuracy_metric, inputs.thresholds, inputs.decision),
        ui_metrics.confusion_matrix(inputs.slices["overall"], inputs.class_names),
        ui_metrics.confidence_metrics(evaluation.uri))
