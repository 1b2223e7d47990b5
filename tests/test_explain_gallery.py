"""The explanation gallery: reading the Examples artifact, the page, the TFX
component in a real LocalDagRunner pipeline, and its KFP v2 compilation."""
import json
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest
from tfx import v1 as tfx
from tfx.orchestration.kubeflow.v2 import kubeflow_v2_dag_runner

from benchmarks.trainer_inputs import write_examples
from components import contract
from components.explain import gallery
from components.explain.component import ExplainGallery
from components.explain.model_graph import ModelGraph
from components.formats import examples as examples_format
from components.models.scratch.network import build_scratch_model
from pipeline.configs import LOCAL_EXECUTOR_BEAM_ARGS
from tests.examples_artifacts import split_uri
from tests.image_files import SAMPLE_DIR

SMALL = gallery.GalleryConfig(max_images=6, filter_count=4, filter_size=48, filter_steps=2)


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
    return write_examples(SAMPLE_DIR, str(tmp_path_factory.mktemp("examples")),
                          splits=(contract.TEST_SPLIT,), limit_per_class=5)


@pytest.fixture(scope="module")
def model_artifact_dir(tmp_path_factory):
    """A Trainer model artifact: <uri>/Format-Serving/keras/model.keras."""
    keras.utils.set_random_seed(5)
    uri = tmp_path_factory.mktemp("model")
    path = uri / "Format-Serving" / contract.KERAS_MODEL_PATH
    path.parent.mkdir(parents=True)
    build_scratch_model().save(str(path))
    return str(uri)


def _test_split(examples_dir):
    return list(examples_format.read_images(split_uri(examples_dir)))


def test_examples_read_back_with_labels_and_class_names(examples_dir):
    examples = _test_split(examples_dir)
    assert examples_format.class_names(examples_dir) == ["cats", "dogs"]
    assert len(examples) == 10
    assert {(e.filename.split("/")[0], e.label) for e in examples} == {("cats", 0), ("dogs", 1)}
    assert all(e.image_bytes[:3] == b"\xff\xd8\xff" for e in examples)


def test_selection_is_fixed_and_takes_classes_in_turn(examples_dir):
    examples = _test_split(examples_dir)
    chosen = examples_format.fixed_selection(examples, 5)
    assert [e.label for e in chosen] == [0, 1, 0, 1, 0]
    assert chosen == examples_format.fixed_selection(list(reversed(examples)), 5)
    assert len(examples_format.fixed_selection(examples, 100)) == len(examples)


def test_missing_class_names_are_explained(tmp_path):
    with pytest.raises(FileNotFoundError, match="class_names.json is missing"):
        examples_format.class_names(str(tmp_path))


def test_gallery_page_misclassified_first(examples_dir, model_artifact_dir, tmp_path):
    graph = ModelGraph(keras.saving.load_model(
        os.path.join(model_artifact_dir, "Format-Serving", contract.KERAS_MODEL_PATH)))
    selection = examples_format.fixed_selection(_test_split(examples_dir), SMALL.max_images)
    messages = []
    page = gallery.build_gallery(graph, selection, ["cats", "dogs"], SMALL, log=messages.append)
    assert len(page.entries) == 6
    flags = [e.misclassified for e in page.entries]
    assert flags == sorted(flags, reverse=True)  # every misclassified one before the correct ones
    assert page.activation_layer == "conv2d_1" and page.filter_layer == "conv2d_2"
    assert len(re.findall(r'class="card(?: wrong)?"', page.html)) == 6
    assert len(re.findall(r'src="data:image/(?:jpeg|png);base64,', page.html)) == 8
    assert "filter patterns of conv2d_2: 4/4" in messages

    out = tmp_path / "gallery"
    out.mkdir()
    index = gallery.write_gallery(page, ["cats", "dogs"], str(out))
    assert index == str(out / gallery.INDEX_FILE)
    summary = json.loads((out / gallery.SUMMARY_FILE).read_text())
    assert [i["misclassified"] for i in summary["images"]] == flags
    assert len(os.listdir(out / "gradcam")) == 6
    assert (out / "filters_conv2d_2.png").exists() and (out / "activations_conv2d_1.png").exists()

    single_file = tmp_path / "kfp" / "html"
    single_file.parent.mkdir()
    assert gallery.write_gallery(page, ["cats", "dogs"], str(single_file)) == str(single_file)
    assert single_file.read_text().startswith("<!DOCTYPE html>")


def _gallery_pipeline(examples_dir, model_dir, root, metadata_path=None):
    examples = tfx.dsl.Importer(
        source_uri=examples_dir, artifact_type=tfx.types.standard_artifacts.Examples,
        properties={"split_names": json.dumps([contract.TEST_SPLIT])}).with_id("examples")
    model = tfx.dsl.Importer(source_uri=model_dir,
                             artifact_type=tfx.types.standard_artifacts.Model).with_id("model")
    explain = ExplainGallery(model=model.outputs["result"], examples=examples.outputs["result"],
                             max_images=SMALL.max_images, filter_count=SMALL.filter_count,
                             filter_size=SMALL.filter_size).with_id("ExplainGallery_scratch")
    return tfx.dsl.Pipeline(
        pipeline_name="explain-gallery-test", pipeline_root=str(root),
        components=[examples, model, explain], enable_cache=False,
        metadata_connection_config=(tfx.orchestration.metadata.sqlite_metadata_connection_config(
            str(metadata_path)) if metadata_path else None),
        beam_pipeline_args=list(LOCAL_EXECUTOR_BEAM_ARGS))


def test_component_compiles_for_kubeflow_v2_as_an_html_artifact(examples_dir, model_artifact_dir):
    runner = kubeflow_v2_dag_runner.KubeflowV2DagRunner(
        config=kubeflow_v2_dag_runner.KubeflowV2DagRunnerConfig(default_image="catsdogs:test"))
    job = runner.run(_gallery_pipeline("gs://bucket/examples", "gs://bucket/model", "gs://bucket/root"),
                     write_out=False)
    spec = job["pipelineSpec"]
    outputs = spec["components"]["ExplainGallery_scratch"]["outputDefinitions"]["artifacts"]
    assert "title: system.HTML" in outputs["gallery_page"]["artifactType"]["instanceSchema"]
    executor = spec["deploymentSpec"]["executors"]["ExplainGallery_scratch_executor"]
    assert "components.explain.component" in json.dumps(executor)


@pytest.mark.slow
def test_component_writes_the_gallery_in_a_local_pipeline(examples_dir, model_artifact_dir,
                                                          tmp_path, caplog):
    from absl import logging as absl_logging

    root = tmp_path / "root"
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)  # as run-local does: the component logs at INFO
    try:
        with caplog.at_level("INFO"):
            tfx.orchestration.LocalDagRunner().run(
                _gallery_pipeline(examples_dir, model_artifact_dir, root, tmp_path / "mlmd.sqlite"))
    finally:
        absl_logging.set_verbosity(verbosity)
    logged = caplog.text
    match = re.search(r"Explanation gallery \(6 test images, (\d+) misclassified, .*s\): (\S+)", logged)
    assert match, logged[-3000:]
    index = match.group(2)
    assert index.startswith(str(root / "ExplainGallery_scratch" / "gallery_page"))
    assert index.endswith(gallery.INDEX_FILE) and os.path.exists(index)
    summary = json.load(open(os.path.join(os.path.dirname(index), gallery.SUMMARY_FILE)))
    assert summary["misclassified"] == int(match.group(1))


def test_page_uri_in_a_folder_that_does_not_exist_yet(tmp_path):
    """KFP hands out a file URI for an HTML artifact and need not create its
    folder. The writer creates it instead of failing with NotFoundError."""
    from components import html_artifact

    uri = str(tmp_path / "run" / "ExplainGallery_scratch" / "gallery_page")
    path = html_artifact.page_path(uri, "index.html")
    assert path == uri and os.path.isdir(os.path.dirname(uri))
    existing_dir = tmp_path / "local_uri"
    existing_dir.mkdir()
    assert html_artifact.page_path(str(existing_dir), "index.html") == str(existing_dir / "index.html")
