"""Explanations of a real Trainer export: the model behind `catsdogs explain`
sees exactly what the served model sees."""
import os
import re

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest
import tensorflow as tf

from benchmarks import trainer_inputs
from components import contract
from components.explain import images
from components.explain.gradcam import GradCam
from components.explain.model_graph import ModelGraph
from components.explain.model_loading import load_keras_model
from components.models.scratch import trainer as scratch
from pipeline import cli
from tests.image_files import SAMPLE_DIR

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trainer_export(tmp_path_factory):
    root = tmp_path_factory.mktemp("trainer")
    examples = trainer_inputs.write_examples(SAMPLE_DIR, str(root / "examples"), limit_per_class=4)
    first = trainer_inputs.image_files(SAMPLE_DIR, contract.TRAIN_SPLIT, 1)["cats"][0]
    transform = trainer_inputs.build_transform_graph(first, str(root / "transform"))
    fn_args = trainer_inputs.fn_args(examples, transform, str(root / "out"),
                                       # float32: bfloat16 (the default on AMX CPUs) rounds batches of
                                       # different sizes differently, beyond this test's 1e-5 tolerance
                                       {"epochs": 1, "steps_per_epoch": 2, "batch_size": 4, "seed": 2,
                                        "precision": "float32"})
    scratch.run_fn(fn_args)
    return fn_args.serving_model_dir


def test_explained_probabilities_match_the_served_signature(trainer_export):
    files = trainer_inputs.image_files(SAMPLE_DIR, contract.TEST_SPLIT, 2)
    paths = [p for class_paths in files.values() for p in class_paths]
    explained = [images.load_image(p) for p in paths]
    cam = GradCam(ModelGraph(load_keras_model(trainer_export)))
    results = cam.explain_batch(np.stack([e.model_input for e in explained]))
    served = tf.saved_model.load(trainer_export).signatures[contract.SERVING_SIGNATURE]
    image_bytes = tf.constant([open(p, "rb").read() for p in paths])
    expected = served(**{contract.SERVING_INPUT_KEY: image_bytes})[contract.PROBABILITIES_KEY].numpy()
    np.testing.assert_allclose(np.stack([r.probabilities for r in results]), expected, atol=1e-5)
    assert cam.conv_layer == "conv2d_4"


def test_cli_explains_the_export(trainer_export, tmp_path, capsys):
    image = trainer_inputs.image_files(SAMPLE_DIR, contract.TEST_SPLIT, 1)["dogs"][0]
    assert cli.main(["explain", "--model", trainer_export, "--image", image, "--out", str(tmp_path),
                     "--what", "gradcam", "activations"]) == 0
    stdout = capsys.readouterr().out
    assert "Grad-CAM over conv2d_4" in stdout
    assert re.search(r"for class '(cats|dogs)'", stdout), stdout  # the names the Trainer saved
    assert (tmp_path / "gradcam.png").exists() and len(os.listdir(tmp_path / "activations")) == 8
