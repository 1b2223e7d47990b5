"""The compiled KFP pipeline, executed: every task of `catsdogs compile --quick`
on the shipped sample, each in a container of the project's image without
network, handed the ExecutorInput the open-source KFP backend builds
(tests/kfp_backend.py: untyped input artifacts, the executor-logs output, the
package's pipeline root, the backend's cache decisions); then the pushed model
is served by `catsdogs serve` and answers over gRPC.

Run by `make test-kfp` (scripts/test_kfp.sh builds the image and sets
CATSDOGS_KFP_IMAGE); `make test` deselects it (marker `kfp`).
"""
import dataclasses
import glob
import json
import os
import shutil
import subprocess
import sys
import time
from typing import Dict, List

import pytest

from tests import kfp_backend
from tests.serving_helpers import free_port

pytestmark = pytest.mark.kfp

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
IMAGE = os.environ.get("CATSDOGS_KFP_IMAGE")
TIMINGS_OUT = os.environ.get("CATSDOGS_KFP_TIMINGS")
SERVE_TIMEOUT_S = 180
KILL_AFTER = r"\] epoch 2/"
"""The Trainers' progress line at the end of the second epoch (components/training/common.py):
the first epoch's training state is saved by then."""


@dataclasses.dataclass
class PipelineRun:
    work: str
    serving_model_dir: str
    package: str
    spec: object
    run: kfp_backend.PipelineRun
    seconds: float

    @property
    def runs(self) -> List[kfp_backend.TaskRun]:
        return self.run.tasks


@pytest.fixture(scope="module")
def pipeline_run(tmp_path_factory) -> PipelineRun:
    if not IMAGE:
        pytest.skip("needs the pipeline image: run `make test-kfp`")
    from pipeline import cli, kubeflow_package

    work = str(tmp_path_factory.mktemp("kfp-run"))
    data_root = os.path.join(work, "data")
    serving_model_dir = os.path.join(work, "serving_model")
    shutil.copytree(SAMPLE, data_root)
    package = os.path.join(work, "pipeline.yaml")
    assert cli.main(["compile", "--output", package, "--image", IMAGE, "--quick",
                     "--pipeline-root", os.path.join(work, "tfx_root"), "--data-root", data_root,
                     "--serving-model-dir", serving_model_dir, "--serving-volume-claim", ""]) == 0
    defaults = kubeflow_package.load_package(package).parameter_defaults()
    # What is asserted must not depend on how well a model trains on this CPU: the
    # VGG16 gate's accuracy floor goes to 0 through its run parameter, as a platform
    # engineer would set it in the KFP UI, so the push always happens.
    arguments = dict(defaults, vgg16_eval_config=_without_accuracy_floor(defaults["vgg16_eval_config"]))
    # The work folder is mounted at the same path into every container, as the
    # bucket and the PVCs reach every pod: data, outputs and the serving folder.
    # Argo's waits between attempts are skipped; nothing asserted depends on them.
    backend = kfp_backend.Backend(kfp_backend.DockerTaskRunner(work), os.path.join(work, "backend"),
                                  wait_backoff=False)
    started = time.monotonic()
    # A lost pod: the scratch Trainer's container is killed once, after its first epoch.
    result = backend.run(package, arguments, faults={"Trainer_scratch": kfp_backend.KillOnce(KILL_AFTER)})
    run = PipelineRun(work, serving_model_dir, package, kubeflow_package.load_package(package).pipeline_spec,
                      result, time.monotonic() - started)
    _record_timings(run)
    return run


def _without_accuracy_floor(eval_config_json: str) -> str:
    eval_config = json.loads(eval_config_json)
    floors = 0
    for metrics_spec in eval_config["metrics_specs"]:
        for metric in metrics_spec["metrics"]:
            for threshold in metric.get("per_slice_thresholds", []):
                if "value_threshold" in threshold["threshold"]:
                    threshold["threshold"]["value_threshold"]["lower_bound"] = 0.0
                    floors += 1
    assert floors == 1, eval_config_json
    return json.dumps(eval_config)


def _record_timings(run: PipelineRun) -> None:
    timings = {"image": IMAGE, "total_seconds": round(run.seconds, 1),
               "tasks": [{"task": r.task, "exit_code": r.exit_code, "seconds": round(r.seconds, 1),
                          "cached": r.cached, "attempts": list(r.attempts)} for r in run.runs]}
    print(json.dumps(timings, indent=1))
    if TIMINGS_OUT:
        with open(TIMINGS_OUT, "w") as f:
            json.dump(timings, f, indent=1)


def test_every_task_ran_in_a_container_and_succeeded(pipeline_run):
    tasks = set(pipeline_run.spec["root"]["dag"]["tasks"])
    ran: Dict[str, int] = {r.task: r.exit_code for r in pipeline_run.runs if not r.cached}
    assert len(tasks) == 18  # the pipeline's 17 components and DataFingerprint
    assert set(ran) == tasks, tasks ^ set(ran)
    assert all(code == 0 for code in ran.values()), ran


def test_a_killed_trainer_is_retried_by_its_compiled_policy(pipeline_run):
    trainer = pipeline_run.run.task("Trainer_scratch")
    policy = pipeline_run.spec["root"]["dag"]["tasks"]["Trainer_scratch"]["retryPolicy"]
    assert policy["maxRetryCount"] >= 1
    assert trainer.attempts == (137, 0)  # SIGKILL, then the retry that finished
    with open(trainer.log_path, errors="replace") as log:
        assert "Trainer_scratch: resuming from " in log.read()  # same output URIs: it found its backup
    model_run = pipeline_run.run.output_uri("Trainer_scratch", "model_run")
    assert not os.path.exists(os.path.join(os.path.dirname(os.path.dirname(model_run)), "resume"))
    assert all(t.attempts == (0,) for t in pipeline_run.runs if t.task != "Trainer_scratch" and not t.cached)


def test_tasks_got_the_open_source_backends_executor_input(pipeline_run):
    """What the harness must not repair: untyped input artifacts and the
    launcher's executor-logs output, on every task that has them."""
    with_inputs = 0
    for task in pipeline_run.runs:
        outputs = task.executor_input["outputs"]
        assert "executor-logs" in outputs["artifacts"], task.task
        assert outputs["outputFile"] == kfp_backend.OUTPUT_METADATA_FILE
        for artifact_list in task.executor_input["inputs"].get("artifacts", {}).values():
            with_inputs += 1
            for artifact in artifact_list["artifacts"]:
                assert artifact["type"] == {"instanceSchema": ""}, task.task
                assert artifact["name"].isdigit()  # the MLMD id, as the driver names it
    assert with_inputs >= 30


def test_a_rerun_is_served_from_the_cache_until_the_data_changes(pipeline_run):
    """The backend's cache keys, reproduced: an unchanged data root leaves
    ImageExampleGen and its consumers cached; one changed image re-runs ingestion."""
    backend = kfp_backend.Backend(kfp_backend.DockerTaskRunner(pipeline_run.work),
                                  os.path.join(pipeline_run.work, "backend"))
    again = backend.run(pipeline_run.package, {}, only=["StatisticsGen"])
    assert [(t.task, t.cached) for t in again.tasks] == [
        ("DataFingerprint", False), ("ImageExampleGen", True), ("StatisticsGen", True)]
    image = sorted(glob.glob(os.path.join(pipeline_run.work, "data", "train", "cats", "*.jpg")))[0]
    replacement = sorted(glob.glob(os.path.join(pipeline_run.work, "data", "train", "cats", "*.jpg")))[1]
    shutil.copyfile(replacement, image)
    changed = backend.run(pipeline_run.package, {}, only=["ImageExampleGen"])
    assert [(t.task, t.cached, t.exit_code) for t in changed.tasks] == [
        ("DataFingerprint", False, 0), ("ImageExampleGen", False, 0)]


def test_vgg16_version_pushed_into_the_serving_folder(pipeline_run):
    versions = glob.glob(os.path.join(pipeline_run.serving_model_dir, "cats_vs_dogs_vgg16", "*",
                                      "saved_model.pb"))
    assert len(versions) == 1, versions
    assert os.path.basename(os.path.dirname(versions[0])).isdigit()


def test_html_pages_and_gradcam_gallery_exist(pipeline_run):
    for model in ("scratch", "vgg16"):
        report = pipeline_run.run.output_uri(f"EvaluationReport_{model}", "report")
        gallery = pipeline_run.run.output_uri(f"ExplainGallery_{model}", "gallery_page")
        for page in (report, gallery):
            assert os.path.isfile(page), page  # the artifact URI itself: what KFP's UI shows
            with open(page) as f:
                assert f.read().lstrip().lower().startswith("<!doctype html")
        with open(gallery) as f:
            assert f.read().count("data:image/jpeg;base64,") >= 1  # Grad-CAM thumbnails


def test_pushed_model_answers_over_grpc_through_catsdogs_serve(pipeline_run):
    from serving.client import ClientOptions, PredictionClient

    port = free_port()
    catsdogs = os.path.join(os.path.dirname(sys.executable), "catsdogs")
    server = subprocess.Popen(
        [catsdogs, "serve", f"--port={port}", "--model_name=cats_vs_dogs_vgg16",
         f"--model_base_path={os.path.abspath(os.path.join(pipeline_run.serving_model_dir, 'cats_vs_dogs_vgg16'))}",
         "--catsdogs_host=127.0.0.1"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    images = sorted(glob.glob(os.path.join(SAMPLE, "test", "*", "*.jpg")))
    try:
        with PredictionClient(f"127.0.0.1:{port}", ClientOptions(timeout_seconds=60)) as client:
            deadline = time.monotonic() + SERVE_TIMEOUT_S
            while True:
                assert server.poll() is None, server.stdout.read().decode(errors="replace")
                try:
                    client.model_status("cats_vs_dogs_vgg16")
                    break
                except Exception:  # not listening or not loaded yet
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(1)
            result = client.predict_files(images, "cats_vs_dogs_vgg16")
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert len(result.predictions) == len(images) == 40
    for prediction in result.predictions:
        assert prediction.class_name in ("cats", "dogs")
        assert sum(prediction.probabilities) == pytest.approx(1.0, abs=1e-4)


def test_kfp_ui_metrics_of_both_models_are_the_evaluators(pipeline_run):
    """system.Metrics and system.ClassificationMetrics as the launcher stores them
    in MLMD (lists and structs wrapped as {"list"} / {"struct"}), which is where
    and how KFP's UI reads them (MetricsVisualizations.tsx), equal to TFMA's output."""
    from components import contract
    from components.evaluation import decision, eval_config, tfma_results

    for model in ("scratch", "vgg16"):
        outputs = pipeline_run.run.output_artifacts[f"EvaluationReport_{model}"]
        scalars, drawn = outputs["metrics"], outputs["classification_metrics"]
        assert (scalars["type"], drawn["type"]) == ("system.Metrics", "system.ClassificationMetrics")
        evaluation = pipeline_run.run.output_uri(f"Evaluator_{model}", "evaluation")
        overall = tfma_results.load_tfma_metrics(evaluation, contract.CATS_VS_DOGS_CLASSES)["overall"]
        numbers = {key: value["double_value"] for key, value in scalars["custom_properties"].items()
                   if "double_value" in value}
        assert numbers["accuracy"] == pytest.approx(overall.get("binary_accuracy"))
        assert numbers["auc"] == pytest.approx(overall.get("auc"))
        assert numbers["example_count"] == 40
        verdict = decision.read_decision(pipeline_run.run.output_uri(f"Evaluator_{model}", "blessing"))
        assert numbers["blessed"] == float(verdict.blessed)
        assert "display_name" in scalars["custom_properties"] and "display_name" in drawn["custom_properties"]

        matrix = drawn["custom_properties"]["confusionMatrix"]["struct_value"]["struct"]
        confusion = overall.confusion["candidate"]
        assert [spec["displayName"] for spec in matrix["annotationSpecs"]] == list(contract.CATS_VS_DOGS_CLASSES)
        assert [row["row"] for row in matrix["rows"]] == [[confusion["tn"], confusion["fp"]],
                                                          [confusion["fn"], confusion["tp"]]]
        roc = drawn["custom_properties"]["confidenceMetrics"]["struct_value"]["list"]
        assert len(roc) >= eval_config.ROC_THRESHOLDS
        assert all(set(point) == {"confidenceThreshold", "recall", "falsePositiveRate"} for point in roc)
