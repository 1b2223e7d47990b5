"""The whole local journey (what `make run` does), end to end on the shipped sample."""
import json
import os
import re
import subprocess
import sys

import pytest
import tensorflow as tf

from components import contract
from pipeline import model_registry
from tests.image_files import SAMPLE_DIR

VENV_BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("run")
    result = subprocess.run(
        [os.path.join(VENV_BIN, "catsdogs"), "run-local", "--data-dir", SAMPLE_DIR,
         "--output-dir", str(output_dir), "--quick", "--serve-and-predict"],
        capture_output=True, text=True, timeout=1500, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return output_dir, result.stdout + result.stderr


def latest_artifact_dir(output_dir, component_id, output_key):
    folder = os.path.join(output_dir, "pipeline_root", component_id, output_key)
    return os.path.join(folder, max(os.listdir(folder), key=int))


@pytest.mark.slow
def test_ingests_every_sample_image(quick_run):
    output_dir, _ = quick_run
    examples = latest_artifact_dir(output_dir, "ImageExampleGen", "examples")
    with open(os.path.join(examples, "ingestion_report.json")) as file:
        totals = json.load(file)["totals"]
    assert totals["examples_written"] == totals["files_seen"] == 160
    for component_id, key in (("StatisticsGen", "statistics"), ("SchemaGen", "schema"),
                              ("ExampleValidator", "anomalies"), ("Transform", "transform_graph")):
        assert os.listdir(latest_artifact_dir(output_dir, component_id, key))


@pytest.mark.slow
def test_each_model_is_pushed_and_served_or_refused_with_a_reason(quick_run):
    output_dir, log = quick_run
    serving_dir = os.path.join(output_dir, "serving_model")
    for name in (model_registry.get("scratch").served_name, model_registry.get("vgg16").served_name):
        model_dir = os.path.join(serving_dir, name)
        versions = sorted(os.listdir(model_dir), key=int) if os.path.isdir(model_dir) else []
        if versions:
            loaded = tf.saved_model.load(os.path.join(model_dir, versions[-1]))
            assert contract.SERVING_SIGNATURE in loaded.signatures
            served = re.search(
                rf"{name} version {versions[-1]}: accuracy ([0-9.]+) \((\d+)/40 test images, via gRPC\)", log)
            assert served, f"{name} was pushed but not served in the run's last step"
        else:
            assert re.search(rf"NOT pushing {name}: .*(below|worse)", log), f"{name}: no push and no reason"
    assert re.search(r"Explanation gallery .*ExplainGallery_vgg16/.*index\.html", log)
    assert re.search(r"Evaluation report for cats_vs_dogs_vgg16: .*\.html", log)
    # the closing summary, read back from ML Metadata
    assert re.search(r"^cats_vs_dogs_vgg16: evaluation report .*\.html$", log, re.MULTILINE)
