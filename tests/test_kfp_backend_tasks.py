"""The compiled tasks on the ExecutorInput the open-source KFP backend sends,
without Docker: tests/kfp_backend.py builds each task's input as the backend's
driver does and runs the task's compiled command as a process of this
environment. One task of each kind: ImageExampleGen (our own component, a Beam
job), StatisticsGen, SchemaGen and Transform (TFX's Beam components),
Trainer_scratch (a Trainer) and BaselineLookup_scratch (our own Python
component); DataFingerprint keys ImageExampleGen's cache.
"""
import glob
import json
import os
import shutil
import subprocess
import sys

import pytest
from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2

from pipeline import cli, kfp_task_entrypoint, kubeflow_runner
from tests import kfp_backend

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE = os.path.join(REPO, "data", "sample")
LAST_TASKS = ["Trainer_scratch", "BaselineLookup_scratch"]


@pytest.fixture(scope="module")
def backend_run(tmp_path_factory):
    work = str(tmp_path_factory.mktemp("kfp-backend"))
    data_root = os.path.join(work, "data")
    shutil.copytree(SAMPLE, data_root)
    package = os.path.join(work, "pipeline.yaml")
    assert cli.main(["compile", "--output", package, "--quick", "--models", "scratch",
                     "--pipeline-root", os.path.join(work, "root"), "--data-root", data_root,
                     "--serving-model-dir", os.path.join(work, "serving"), "--serving-volume-claim", ""]) == 0
    backend = kfp_backend.Backend(kfp_backend.ProcessTaskRunner(), os.path.join(work, "backend"),
                                  wait_backoff=False)
    # A lost pod: the Trainer's process is killed when its second epoch ends (the
    # first epoch's state is saved by then).
    run = backend.run(package, {}, only=LAST_TASKS,
                      faults={"Trainer_scratch": kfp_backend.KillOnce(r"\] epoch 2/")})
    return work, package, backend, run


def test_each_kind_of_task_succeeds_on_the_backends_executor_input(backend_run):
    _, _, _, run = backend_run
    assert [t.task for t in run.tasks] == ["DataFingerprint", "ImageExampleGen", "StatisticsGen",
                                           "SchemaGen", "Transform", "Trainer_scratch",
                                           "BaselineLookup_scratch"]
    assert all(t.exit_code == 0 and not t.cached for t in run.tasks)
    # The killed Trainer was run again by its compiled retry policy, on the same
    # outputs, and resumed from what it had saved there.
    trainer = run.task("Trainer_scratch")
    assert trainer.attempts == (-9, 0)
    with open(trainer.log_path, errors="replace") as log:
        assert "Trainer_scratch: resuming from " in log.read()
    for task in run.tasks:
        executor_input = task.executor_input
        assert "executor-logs" in executor_input["outputs"]["artifacts"]
        for artifact_list in executor_input["inputs"].get("artifacts", {}).values():
            assert artifact_list["artifacts"][0]["type"] == {"instanceSchema": ""}
    # Each produced what its consumers read, where the backend told it to write.
    examples = run.output_uri("ImageExampleGen", "examples")
    run_root = os.path.join(backend_run[0], "root", "cats-vs-dogs", run.run_id)
    assert examples.startswith(os.path.join(run_root, "ImageExampleGen") + "/")
    assert glob.glob(os.path.join(examples, "Split-train", "*.gz"))
    assert os.path.isfile(os.path.join(run.output_uri("SchemaGen", "schema"), "schema.pbtxt"))
    model = run.output_uri("Trainer_scratch", "model")
    assert glob.glob(os.path.join(model, "**", "saved_model.pb"), recursive=True)
    assert "baseline_model" in run.output_artifacts["BaselineLookup_scratch"]


def test_metadata_round_trips_through_mlmd_as_the_backend_stores_it(backend_run):
    """Downstream tasks read an Examples artifact's split and class names and
    counts back from the metadata the driver rebuilds from MLMD custom properties
    (integers come back as doubles; the launcher adds display_name)."""
    _, _, _, run = backend_run
    statistics_input = run.task("StatisticsGen").executor_input["inputs"]["artifacts"]["examples"]
    metadata = statistics_input["artifacts"][0]["metadata"]
    assert metadata["display_name"] == "examples"
    assert sorted(json.loads(metadata["split_names"])) == ["test", "train", "validation"]
    assert json.loads(metadata["class_names"]) == ["cats", "dogs"]
    assert metadata["examples_written"] == 160.0


def test_tfx_entrypoint_alone_fails_on_that_input(backend_run):
    """The control: TFX's own entrypoint, given StatisticsGen's ExecutorInput as
    the backend sends it, fails on the untyped input (tensorflow/tfx#7768), so
    the emulation reproduces what the task entrypoint exists for."""
    _, package, _, run = backend_run
    task = run.task("StatisticsGen")
    executor = _container(package, "StatisticsGen")
    args = list(executor.args)
    args = args[:args.index(kfp_task_entrypoint.OUTPUTS_SPEC_FLAG)]
    args[args.index("{{$}}")] = json_format.MessageToJson(
        json_format.ParseDict(task.executor_input, pipeline_spec_pb2.ExecutorInput()))
    result = subprocess.run([sys.executable, "-m", kubeflow_runner.TFX_ENTRYPOINT] + args,
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode != 0
    assert "'NoneType' object has no attribute 'get'" in result.stderr


def test_unchanged_data_is_cached_and_a_changed_image_reruns_ingestion(backend_run):
    work, package, backend, first = backend_run
    again = backend.run(package, {}, only=["StatisticsGen"])
    assert [(t.task, t.cached) for t in again.tasks] == [
        ("DataFingerprint", False), ("ImageExampleGen", True), ("StatisticsGen", True)]
    assert again.output_uri("ImageExampleGen", "examples") == first.output_uri("ImageExampleGen", "examples")

    images = sorted(glob.glob(os.path.join(work, "data", "train", "dogs", "*.jpg")))
    shutil.copyfile(images[1], images[0])  # one image replaced by another
    changed = backend.run(package, {}, only=["ImageExampleGen"])
    assert [(t.task, t.cached, t.exit_code) for t in changed.tasks] == [
        ("DataFingerprint", False, 0), ("ImageExampleGen", False, 0)]
    assert changed.output_uri("ImageExampleGen", "examples") != first.output_uri("ImageExampleGen", "examples")


def _container(package: str, task: str):
    from pipeline import kubeflow_package
    spec = json_format.ParseDict(kubeflow_package.load_package(package).pipeline_spec,
                                 pipeline_spec_pb2.PipelineSpec())
    label = kubeflow_runner.executor_labels(spec)[task]
    return kubeflow_runner.deployment_config(spec).executors[label].container
