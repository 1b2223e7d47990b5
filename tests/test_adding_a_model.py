"""README's "Adding a model", followed to the letter: a fourth model made by copying a
model's folder and editing its SPEC and network, then one line in the registry. It
compiles for KFP and runs the whole local pipeline on the sample with quick budgets.

The copy lives in a temporary folder joined to the components.models package (the
source tree stays untouched), and the registry line is added in the process that
compiles and runs (a temporary registry): see REGISTRY_LINE.
"""
import importlib.util
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_transform as tft

from components import contract
from components.image_shape import ImageShape
from tests.image_files import SAMPLE_DIR

KEY, SERVED_NAME = "tiny", "cats_vs_dogs_tiny"
IMAGE_SHAPE = ImageShape(64, 64, 3)
MODELS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "components", "models")

# Step 4 of README's recipe, in the process that runs `catsdogs`: the folder joins
# components.models, and its SPEC joins model_registry.MODELS.
REGISTRY_LINE = """
import sys
import components.models
components.models.__path__.append(sys.argv.pop(1))
from components.models import {key}
from pipeline import cli, model_registry
model_registry.MODELS = model_registry.MODELS + ({key}.SPEC,)
sys.exit(cli.main(sys.argv[1:]))
"""


def edit(path, old, new):
    with open(path) as f:
        text = f.read()
    assert old in text, f"{path} no longer holds {old!r}: update README's recipe and this test"
    with open(path, "w") as f:
        f.write(text.replace(old, new))


@pytest.fixture(scope="module")
def fourth_model(tmp_path_factory):
    """Steps 1-3: copy the scratch convnet's folder, rename it in its SPEC, give it
    its own image shape and a smaller network."""
    models_dir = tmp_path_factory.mktemp("models")
    folder = models_dir / KEY
    shutil.copytree(os.path.join(MODELS_DIR, "scratch"), folder,
                    ignore=shutil.ignore_patterns("__pycache__"))
    os.remove(folder / "recorded_seeds.json")  # the scratch convnet's accuracy, not the copy's
    spec = folder / "__init__.py"
    edit(spec, 'key="scratch"', f'key="{KEY}"')
    edit(spec, 'served_name="cats_vs_dogs_scratch"', f'served_name="{SERVED_NAME}"')
    edit(spec, 'title="Scratch convnet"', 'title="Tiny convnet"')
    edit(spec, "image_shape=BOOK_IMAGE_SHAPE", "image_shape=ImageShape(64, 64, 3)")
    edit(spec, "from components.image_shape import BOOK_IMAGE_SHAPE",
         "from components.image_shape import ImageShape")
    edit(folder / "network.py", "FILTERS = (32, 64, 128, 128)", "FILTERS = (8, 16, 16, 16)")
    edit(folder / "network.py", "DENSE_UNITS = 512", "DENSE_UNITS = 16")
    return str(models_dir)


def copied_network(models_dir):
    spec = importlib.util.spec_from_file_location("tiny_network", os.path.join(models_dir, KEY, "network.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def parameters(trainer_model_dir):
    """The exported model's weights (not the optimizer's), counted from its checkpoint."""
    reader = tf.train.load_checkpoint(os.path.join(trainer_model_dir, "Format-Serving", "variables", "variables"))
    return sum(int(np.prod(shape)) for name, shape in reader.get_variable_to_shape_map().items()
               if name.startswith("model/_operations/"))


def catsdogs(models_dir, *argv, cwd):
    command = [sys.executable, "-c", REGISTRY_LINE.format(key=KEY), models_dir, *argv]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1500, cwd=cwd,
                            env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result.stdout + result.stderr


def test_the_new_model_is_refused_until_it_is_registered(fourth_model, tmp_path):
    result = subprocess.run([os.path.join(os.path.dirname(sys.executable), "catsdogs"), "compile",
                             "--models", KEY, "--output", str(tmp_path / "p.yaml")],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 2 and f"unknown model(s) {KEY}" in result.stderr, result.stderr


def test_a_copied_folder_and_one_registry_line_compile_for_kubeflow(fourth_model, tmp_path):
    package = tmp_path / "pipeline.yaml"
    catsdogs(fourth_model, "compile", "--models", KEY, "--quick", "--output", str(package), cwd=tmp_path)
    from pipeline import kubeflow_package
    compiled = kubeflow_package.load_package(str(package))
    defaults = compiled.parameter_defaults()
    hparams = json.loads(defaults[f"{KEY}_hparams"])
    assert (hparams["epochs"], hparams["steps_per_epoch"]) == (2, 3)  # the copied SPEC's quick budgets
    with open(package) as f:
        text = f.read()
    assert f"components.models.{KEY}.trainer.run_fn" in text
    for component in ("Trainer", "Evaluator", "Pusher", "ExplainGallery"):
        assert f"{component.lower()}-{KEY}" in text or f"{component}_{KEY}" in text, component
    assert "Trainer_scratch" not in text and "trainer-scratch" not in text


@pytest.mark.slow
def test_a_copied_folder_and_one_registry_line_run_the_whole_pipeline(fourth_model, tmp_path):
    output_dir = tmp_path / "run"
    log = catsdogs(fourth_model, "run-local", "--data-dir", os.path.abspath(SAMPLE_DIR), "--output-dir",
                   str(output_dir), "--models", KEY, "--quick", "--min-accuracy", f"{KEY}=0", cwd=tmp_path)
    root = output_dir / "pipeline_root"

    def latest(component_id, key):
        folder = root / component_id / key
        return str(folder / max(os.listdir(folder), key=int))

    # Transform resized every image to the new model's shape, read from its SPEC.
    transform = tft.TFTransformOutput(latest("Transform", "transform_graph"))
    assert transform.transformed_feature_spec()[contract.TRANSFORMED_IMAGE_KEY].shape == list(IMAGE_SHAPE.as_tuple)
    # The Trainer ran the copy's run_fn, with the copy's network on that shape.
    expected_parameters = copied_network(fourth_model).build_scratch_model(2, IMAGE_SHAPE).count_params()
    assert expected_parameters < 20_000
    assert parameters(latest(f"Trainer_{KEY}", "model")) == expected_parameters
    # Its gate passed (a floor of 0: nothing here depends on how well it trains) and it was pushed.
    versions = os.listdir(output_dir / "serving_model" / SERVED_NAME)
    assert len(versions) == 1, log[-3000:]
    served = tf.saved_model.load(str(output_dir / "serving_model" / SERVED_NAME / versions[0]))
    with open(os.path.join(SAMPLE_DIR, "test", "cats", sorted(os.listdir(os.path.join(SAMPLE_DIR, "test", "cats")))[0]),
              "rb") as f:
        outputs = served.signatures[contract.SERVING_SIGNATURE](**{contract.SERVING_INPUT_KEY: tf.constant([f.read()])})
    assert outputs[contract.CLASSES_KEY].shape[0] == 1
    # Its report finds no recorded seeds of its own (the copied record was removed).
    with open(os.path.join(latest(f"EvaluationReport_{KEY}", "report"), "evaluation_report.html")) as f:
        page = f.read()
    assert "No run of this model is recorded yet" in page and "<th>per seed</th>" not in page
