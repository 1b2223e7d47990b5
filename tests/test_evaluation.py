"""Evaluation: TFMA config, blessing decisions, and the evaluation gate run for
real (LocalDagRunner, Beam, TFMA) twice: the first run has no baseline and
pushes; the second finds the first run's push as its baseline and refuses a
worse model."""
import glob
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from sklearn import metrics as sk_metrics
from tensorflow_model_analysis.proto import config_pb2, validation_result_pb2

from benchmarks.partial_pipelines import create_gate_pipeline
from components import contract
from components.evaluation import decision, eval_config, report, tfma_results
from components.formats import warmup as warmup_format
from components.pusher import serving_layout
from pipeline import model_registry
from tests import examples_artifacts
from tests import marker_model as support

MODEL_NAME = model_registry.get("scratch").served_name


# -- fast: configuration and decisions ---------------------------------------------

def test_eval_config_uses_the_example_signature_and_thresholds_only_the_overall_slice():
    config = eval_config.build_eval_config(eval_config.BlessingThresholds(0.7, 0.02))
    spec = config.model_specs[0]
    assert (spec.signature_name, spec.label_key, spec.prediction_key) == (
        contract.EXAMPLES_SIGNATURE, contract.LABEL_KEY, contract.POSITIVE_PROBABILITY_KEY)
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], [contract.LABEL_KEY]]
    metrics = {m.class_name: m for m in config.metrics_specs[0].metrics}
    assert {"ExampleCount", "BinaryAccuracy", "AUC", "Precision", "Recall", "ClippedBinaryCrossEntropy",
            "Calibration", "ConfusionMatrixAtThresholds"} <= set(metrics)
    accuracy = metrics["BinaryAccuracy"]
    assert not accuracy.HasField("threshold")
    (per_slice,) = accuracy.per_slice_thresholds
    assert list(per_slice.slicing_specs) == [config_pb2.SlicingSpec()]
    assert per_slice.threshold.value_threshold.lower_bound.value == 0.7
    assert per_slice.threshold.change_threshold.absolute.value == -0.02


def test_binary_cross_entropy_stays_finite_for_saturated_probabilities():
    from components.evaluation import metrics as clipped
    (computation,) = clipped._computations(name="binary_crossentropy")  # pylint: disable=protected-access
    combiner = computation.combiner
    saturated = combiner._cross_entropy(np.array([1.0, 0.0]), np.array([1.0, 1.0]))
    assert saturated == pytest.approx(-np.log(1e-7) / 2, rel=1e-6)
    ordinary = combiner._cross_entropy(np.array([1.0, 0.0]), np.array([0.8, 0.3]))
    assert ordinary == pytest.approx(-(np.log(0.8) + np.log(0.7)) / 2)


@pytest.mark.parametrize("bad", [dict(min_accuracy=1.5), dict(min_accuracy=0.7, max_accuracy_drop=-0.1)])
def test_thresholds_out_of_range_are_rejected(bad):
    with pytest.raises(ValueError, match="must be in"):
        eval_config.BlessingThresholds(**bad)


def test_decision_names_each_failed_threshold_and_the_shortfall():
    config = eval_config.build_eval_config(eval_config.BlessingThresholds(0.7, 0.01))
    threshold = config.metrics_specs[0].metrics[1].per_slice_thresholds[0].threshold
    result = validation_result_pb2.ValidationResult(validation_ok=False)
    per_slice = result.metric_validations_per_slice.add()
    value_threshold = config_pb2.MetricThreshold(value_threshold=threshold.value_threshold)
    change_threshold = config_pb2.MetricThreshold(change_threshold=threshold.change_threshold)
    for value, metric_threshold, is_diff in ((0.62, value_threshold, False), (-0.05, change_threshold, True)):
        failure = per_slice.failures.add()
        failure.metric_key.name = eval_config.ACCURACY_METRIC
        failure.metric_key.is_diff = is_diff
        failure.metric_value.double_value.value = value
        failure.metric_threshold.CopyFrom(metric_threshold)
    outcome = decision.decide(result, True, "latest pushed version 7", 7)
    summary = outcome.summary()
    assert summary.startswith("NOT BLESSED; baseline: version 7")
    assert "binary_accuracy = 0.6200 is below the required 0.7000 (short by 0.0800)" in summary
    assert "changed by -0.0500 against the baseline; at most 0.0100 drop is allowed (short by 0.0400)" \
        in summary
    assert decision.BlessingDecision.from_json(outcome.to_json()) == outcome


def test_create_pipeline_gates_each_trainer_with_its_own_thresholds(tmp_path):
    import dataclasses

    from pipeline.configs import PipelineConfig
    from pipeline.pipeline import component_by_id, create_pipeline

    config = PipelineConfig.for_local_run("data/sample", str(tmp_path))
    config = dataclasses.replace(config, models={**config.models, "scratch": dataclasses.replace(
        config.models["scratch"], thresholds=eval_config.BlessingThresholds(0.61, 0.03))})
    pipeline = create_pipeline(config)
    for suffix, model_name, minimum in (("scratch", model_registry.get("scratch").served_name, 0.61),
                                        ("vgg16", model_registry.get("vgg16").served_name, 0.90)):
        trainer = component_by_id(pipeline, f"Trainer_{suffix}")
        trainer_model = trainer.outputs["model"]
        lookup = component_by_id(pipeline, f"BaselineLookup_{suffix}")
        evaluator = component_by_id(pipeline, f"Evaluator_{suffix}")
        pusher = component_by_id(pipeline, f"Pusher_{suffix}")
        evaluation_report = component_by_id(pipeline, f"EvaluationReport_{suffix}")
        assert evaluation_report.inputs["model_run"] is trainer.outputs["model_run"]
        assert evaluation_report.exec_properties["model_package"] == model_registry.get(suffix).package
        assert lookup.inputs["candidate_model"] is trainer_model
        assert lookup.exec_properties["model_name"] == model_name
        assert lookup.exec_properties["serving_model_dir"] == config.serving_model_dir
        assert evaluator.inputs["baseline_model"] is lookup.outputs["baseline_model"]
        assert pusher.inputs["model_blessing"] is evaluator.outputs["blessing"]
        assert pusher.exec_properties["model_name"] == model_name
        assert json.loads(evaluator.exec_properties["example_splits"]) == [contract.TEST_SPLIT]
        metrics = json.loads(evaluator.exec_properties["eval_config"])["metrics_specs"][0]["metrics"]
        (accuracy,) = [m for m in metrics if m["class_name"] == "BinaryAccuracy"]
        bound = accuracy["per_slice_thresholds"][0]["threshold"]["value_threshold"]["lower_bound"]
        assert bound == pytest.approx(minimum)  # JSON of a DoubleValue is the bare number


def test_report_page_is_the_uri_on_kubeflow_and_inside_it_locally(tmp_path):
    kfp_uri = str(tmp_path / "task" / "report")
    os.makedirs(os.path.dirname(kfp_uri))
    assert report.write_page("<html>kfp</html>", kfp_uri) == kfp_uri
    local_uri = tmp_path / "local"
    local_uri.mkdir()
    path = report.write_page("<html>local</html>", str(local_uri))
    assert path == str(local_uri / report.REPORT_FILE) and open(path).read() == "<html>local</html>"


def test_evaluation_nodes_compile_for_kubeflow_v2_without_a_resolver(tmp_path):
    from tfx import v1 as tfx
    from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

    pipeline = create_gate_pipeline(str(tmp_path), str(tmp_path / "model"), str(tmp_path / "examples"),
                                     "gs://bucket/serving", MODEL_NAME, eval_config.BlessingThresholds(0.7))
    pipeline.metadata_connection_config = None
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image="catsdogs:test"),
        output_dir=str(tmp_path), output_filename="pipeline.json")
    runner.run(pipeline)
    spec = json.loads((tmp_path / "pipeline.json").read_text())["pipelineSpec"]
    tasks = spec["root"]["dag"]["tasks"]
    assert {"BaselineLookup_test", "Evaluator_test", "Pusher_test", "EvaluationReport_test"} <= set(tasks)
    assert not any("resolver" in name.lower() for name in tasks)
    report_output = spec["components"]["EvaluationReport_test"]["outputDefinitions"]["artifacts"]["report"]
    assert report_output["artifactType"]["instanceSchema"].startswith("title: system.HTML")
    assert "Resolver" not in json.dumps(spec["deploymentSpec"])
    del tfx


# -- slow: the gate run for real, twice --------------------------------------------

def _latest(pattern: str) -> str:
    return max(glob.glob(pattern), key=lambda p: int(os.path.basename(p.rstrip("/"))))


def _run_gate(root, model_dir, thresholds):
    from tfx import v1 as tfx
    pipeline = create_gate_pipeline(root, model_dir, os.path.join(root, "examples"),
                                     os.path.join(root, "serving"), MODEL_NAME, thresholds)
    tfx.orchestration.LocalDagRunner().run(pipeline)
    node = os.path.join(root, "pipeline_root", "{}_test", "{}", "*")
    evaluation = _latest(node.format("Evaluator", "evaluation"))
    return {
        "evaluation": evaluation,
        "blessing": _latest(node.format("Evaluator", "blessing")),
        "pushed": json.load(open(os.path.join(_latest(node.format("Pusher", "pushed_model")), "push.json"))),
        "report_dir": _latest(node.format("EvaluationReport", "report")),
        "metrics": tfma_results.load_tfma_metrics(evaluation, list(contract.CATS_VS_DOGS_CLASSES)),
    }


@pytest.fixture(scope="module")
def gate_runs(tmp_path_factory):
    """Run 1: a model of known accuracy (support.MARKED_ACCURACY, by construction),
    min accuracy just under it. Run 2: the same model with its output flipped
    (accuracy 1 - MARKED_ACCURACY), a zero floor, so only the change threshold
    against run 1's push can stop it."""
    root = str(tmp_path_factory.mktemp("gate"))
    images = os.path.join(root, "images")
    marked = support.write_marked_images(images)
    model = support.marker_model()
    good = support.export_model(model, os.path.join(root, "good", "Format-Serving"))
    worse = support.export_model(model, os.path.join(root, "worse", "Format-Serving"), invert=True)
    examples_artifacts.write_examples_artifact(os.path.join(root, "examples"), image_root=images)
    probabilities, labels = support.direct_predictions(good, images)
    # float32 sums of 900 pixel values: off by ~1e-5, far from the 0.05 margin around 0.5
    np.testing.assert_allclose(probabilities, [m.probability for m in marked], atol=1e-4)
    accuracy = float(np.mean((probabilities >= 0.5) == labels))
    assert accuracy == support.MARKED_ACCURACY
    first = _run_gate(root, os.path.dirname(good), eval_config.BlessingThresholds(accuracy - 0.01))
    second = _run_gate(root, os.path.dirname(worse), eval_config.BlessingThresholds(0.0))
    return {"root": root, "first": first, "second": second, "good": good,
            "direct": (probabilities, labels), "accuracy": accuracy}


@pytest.mark.slow
def test_tfma_metrics_agree_with_a_direct_evaluation_of_the_same_saved_model(gate_runs):
    probabilities, labels = gate_runs["direct"]
    overall = gate_runs["first"]["metrics"]["overall"]
    predicted = probabilities >= 0.5
    clipped = np.clip(probabilities, 1e-7, 1 - 1e-7)
    expected = {
        "example_count": len(labels),
        "binary_accuracy": np.mean(predicted == labels),
        "precision": sk_metrics.precision_score(labels, predicted, zero_division=0),
        "recall": sk_metrics.recall_score(labels, predicted),
        "auc": sk_metrics.roc_auc_score(labels, probabilities),
        "binary_crossentropy": -np.mean(labels * np.log(clipped) + (1 - labels) * np.log(1 - clipped)),
        "mean_prediction": np.mean(probabilities),
    }
    tolerances = {"auc": 2e-3, "binary_crossentropy": 1e-4, "mean_prediction": 1e-5}
    for name, value in expected.items():
        assert overall.get(name) == pytest.approx(value, abs=tolerances.get(name, 1e-6)), name
    by_label = {label: gate_runs["first"]["metrics"][f"label={name}"]
                for label, name in enumerate(contract.CATS_VS_DOGS_CLASSES)}
    for label, metrics in by_label.items():
        assert metrics.get("example_count") == np.sum(labels == label)
        assert metrics.get("binary_accuracy") == pytest.approx(np.mean(predicted[labels == label] == label))
    confusion = overall.confusion["candidate"]
    assert confusion == {"tp": np.sum(predicted & (labels == 1)), "fp": np.sum(predicted & (labels == 0)),
                         "tn": np.sum(~predicted & (labels == 0)), "fn": np.sum(~predicted & (labels == 1))}


@pytest.mark.slow
def test_first_run_has_no_baseline_is_blessed_and_pushed_with_warmup(gate_runs):
    first = gate_runs["first"]
    verdict = decision.read_decision(first["blessing"])
    assert verdict.blessed and not verdict.baseline_found and "first push" in verdict.baseline_reason
    pushed = first["pushed"]
    assert pushed["pushed"] == 1 and pushed["already_serving"] == 0
    assert os.path.dirname(pushed["pushed_destination"]) == os.path.join(gate_runs["root"], "serving", MODEL_NAME)
    loaded = tf.saved_model.load(pushed["pushed_destination"])
    assert contract.SERVING_SIGNATURE in loaded.signatures
    logs = list(warmup_format.read_records(os.path.join(pushed["pushed_destination"], serving_layout.WARMUP_FILE)))
    assert len(logs) == 5 and all(log.predict_log.request.inputs for log in logs)


@pytest.mark.slow
def test_second_run_finds_the_first_push_as_baseline_and_refuses_a_worse_model(gate_runs):
    first, second = gate_runs["first"], gate_runs["second"]
    verdict = decision.read_decision(second["blessing"])
    assert verdict.baseline_found and verdict.baseline_version == first["pushed"]["pushed_version"]
    assert not verdict.blessed
    (failure,) = verdict.failures
    assert failure.kind == "change" and failure.value < 0
    expected_drop = (1 - gate_runs["accuracy"]) - gate_runs["accuracy"]
    assert failure.value == pytest.approx(expected_drop, abs=1e-6)
    assert second["pushed"]["pushed"] == 0 and "short by" in second["pushed"]["reason"]
    versions = serving_layout.list_versions(os.path.join(gate_runs["root"], "serving", MODEL_NAME))
    assert [v.version for v in versions] == [first["pushed"]["pushed_version"]]
    baseline_accuracy = second["metrics"]["overall"].get("binary_accuracy", "baseline")
    assert baseline_accuracy == pytest.approx(gate_runs["accuracy"])


@pytest.mark.slow
def test_report_shows_decision_metrics_confusion_matrix_and_worst_images(gate_runs):
    for run, verdict in (("first", "BLESSED"), ("second", "NOT BLESSED")):
        report_dir = gate_runs[run]["report_dir"]
        with open(os.path.join(report_dir, report.REPORT_FILE)) as file:
            page = file.read()
        assert f'<p class="verdict">{verdict}</p>' in page
        assert page.count("<figure>") == 10
        assert 'alt="confusion matrix" src="data:image/png;base64,' in page
        assert "they agree" in page
        accuracy = gate_runs["accuracy"] if run == "first" else 1 - gate_runs["accuracy"]
        assert re.search(rf"<th>binary_accuracy</th><td>{accuracy:.4f}</td>", page)
    second_page = open(os.path.join(gate_runs["second"]["report_dir"], report.REPORT_FILE)).read()
    assert "baseline (overall)" in second_page and "FAILED: binary_accuracy changed by" in second_page


@pytest.mark.slow
def test_run_summary_reads_push_outcome_and_report_path_from_metadata(gate_runs):
    from components.evaluation import run_summary
    lines = run_summary.summary_lines(os.path.join(gate_runs["root"], "metadata.sqlite"))
    push_line, report_line = lines
    assert push_line.startswith(f"{MODEL_NAME}: NOT pushed: NOT BLESSED; baseline: version ")
    assert report_line == (f"{MODEL_NAME}: evaluation report "
                           f"{os.path.join(gate_runs['second']['report_dir'], report.REPORT_FILE)}")


def _ui_metrics_artifacts(root):
    """(system.Metrics, system.ClassificationMetrics) custom properties of each
    EvaluationReport run, oldest first, as the KFP UI would read them."""
    from ml_metadata.metadata_store import metadata_store
    from ml_metadata.proto import metadata_store_pb2
    from tfx.types import artifact as tfx_artifact

    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = os.path.join(root, "metadata.sqlite")
    store = metadata_store.MetadataStore(config)

    def values(artifact):
        found = {}
        for key, value in artifact.custom_properties.items():
            kind = value.WhichOneof("value")
            found[key] = (tfx_artifact._decode_struct_value(value.struct_value)  # pylint: disable=protected-access
                          if kind == "struct_value" else getattr(value, kind))
        return found

    return ([values(a) for a in sorted(store.get_artifacts_by_type("system.Metrics"), key=lambda a: a.id)],
            [values(a) for a in sorted(store.get_artifacts_by_type("system.ClassificationMetrics"),
                                       key=lambda a: a.id)])


@pytest.mark.slow
def test_ui_metrics_are_the_evaluators_numbers_in_the_layout_the_kfp_ui_reads(gate_runs):
    metrics, classification = _ui_metrics_artifacts(gate_runs["root"])
    assert len(metrics) == len(classification) == 2
    probabilities, labels = gate_runs["direct"]
    for run, scalars, drawn in zip(("first", "second"), metrics, classification):
        overall = gate_runs[run]["metrics"]["overall"]
        assert scalars["accuracy"] == pytest.approx(overall.get("binary_accuracy"))
        assert scalars["auc"] == pytest.approx(overall.get("auc"))
        assert scalars["loss"] == pytest.approx(overall.get("binary_crossentropy"))
        assert scalars["example_count"] == len(labels)
        assert scalars["display_name"] == f"metrics of {MODEL_NAME}"
        confusion = overall.confusion["candidate"]
        assert drawn["confusionMatrix"] == {
            "annotationSpecs": [{"displayName": name} for name in contract.CATS_VS_DOGS_CLASSES],
            "rows": [{"row": [confusion["tn"], confusion["fp"]]}, {"row": [confusion["fn"], confusion["tp"]]}]}
        roc = drawn["confidenceMetrics"]
        assert len(roc) >= eval_config.ROC_THRESHOLDS
        at_half = min(roc, key=lambda point: abs(point["confidenceThreshold"] - 0.5))
        assert at_half["recall"] == pytest.approx(confusion["tp"] / (confusion["tp"] + confusion["fn"]), abs=0.03)
        recalls = [point["recall"] for point in roc]
        assert recalls == sorted(recalls, reverse=True)  # thresholds rise, recall falls
    first, second = metrics
    assert (first["blessed"], second["blessed"]) == (1.0, 0.0)
    assert first["accuracy"] == pytest.approx(gate_runs["accuracy"])
    assert first["threshold_min_accuracy"] == pytest.approx(gate_runs["accuracy"] - 0.01)
    assert second["threshold_min_accuracy"] == 0.0
