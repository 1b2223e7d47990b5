"""`catsdogs explain` end to end on saved models and real image files."""
import os
import subprocess
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import pytest
from PIL import Image

from components import contract
from components.models.scratch.network import build_scratch_model
from pipeline import cli, model_registry
from tests.evidence_models import Square, dense_only_model, evidence_model, image_with_squares, write_png

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_CAT = os.path.join(REPO, "data", "sample", "test", "cats", "cat.1500.jpg")


@pytest.fixture(scope="module")
def scratch_export(tmp_path_factory):
    """A pushed-model layout: <base>/<name>/<version>/keras/model.keras."""
    keras.utils.set_random_seed(3)
    version_dir = tmp_path_factory.mktemp("serving") / model_registry.get("scratch").served_name / "1"
    path = version_dir / contract.KERAS_MODEL_PATH
    path.parent.mkdir(parents=True)
    build_scratch_model().save(str(path))
    return str(version_dir)


def explain(*args) -> int:
    return cli.main(["explain", *args])


def test_writes_every_picture_for_a_pushed_model(scratch_export, tmp_path, capsys):
    out = tmp_path / "out"
    assert explain("--model", scratch_export, "--image", SAMPLE_CAT, "--out", str(out),
                   "--filters", "4", "--filter-steps", "3", "--filter-size", "48") == 0
    stdout = capsys.readouterr().out
    assert "Grad-CAM over conv2d_4" in stdout
    cat = Image.open(SAMPLE_CAT)
    gradcam = Image.open(out / "gradcam.png")
    assert gradcam.size == cat.size and gradcam.mode == "RGB"
    assert sorted(os.listdir(out / "activations")) == [
        "00_conv2d_1.png", "01_max_pooling2d_1.png", "02_conv2d_2.png", "03_max_pooling2d_2.png",
        "04_conv2d_3.png", "05_max_pooling2d_3.png", "06_conv2d_4.png", "07_max_pooling2d_4.png"]
    assert sorted(os.listdir(out / "filters")) == [f"conv2d_{i}.png" for i in range(1, 5)]
    assert "filter patterns conv2d_4: 4/4" in stdout  # progress on long work


def test_class_option_by_name_and_chosen_layers(tmp_path, capsys):
    model_file = str(tmp_path / "evidence.keras")
    evidence_model().save(model_file)
    image = write_png(image_with_squares(Square(10, 10, 60, (230, 20, 20)),
                                         Square(100, 100, 20, (20, 230, 20))),
                      str(tmp_path / "squares.png"))
    out = tmp_path / "out"
    assert explain("--model", model_file, "--image", image, "--out", str(out), "--what", "gradcam",
                   "activations", "--layers", "evidence_pool", "--class", "cats", "--class-names", "cats,dogs") == 0
    stdout = capsys.readouterr().out
    assert "for class 'cats'" in stdout
    assert os.listdir(out / "activations") == ["00_evidence_pool.png"]
    assert not (out / "filters").exists()


def test_refuses_a_model_without_conv_layers(tmp_path, capsys):
    model_file = str(tmp_path / "dense.keras")
    dense_only_model().save(model_file)
    assert explain("--model", model_file, "--image", SAMPLE_CAT, "--out", str(tmp_path / "o")) == 2
    assert "model 'no_convs' has no 2-D convolution layers" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("option", ["--layers", "--filter-layers", "--gradcam-layer"])
def test_refuses_an_unknown_layer(scratch_export, tmp_path, capsys, option):
    assert explain("--model", scratch_export, "--image", SAMPLE_CAT, "--out", str(tmp_path / "o"),
                   option, "block9_conv9") == 2
    err = capsys.readouterr().err
    assert "no conv/pooling layer named 'block9_conv9'" in err and "conv2d_1" in err
    assert not (tmp_path / "o").exists()


def test_refuses_a_filter_size_too_small_for_the_layer(scratch_export, tmp_path, capsys):
    assert explain("--model", scratch_export, "--image", SAMPLE_CAT, "--out", str(tmp_path / "o"),
                   "--what", "filters", "--filter-layers", "conv2d_4", "--filter-size", "24") == 2
    assert "24x24 pixels are too small for layer 'conv2d_4'" in capsys.readouterr().err


def test_refuses_an_unknown_class(scratch_export, tmp_path, capsys):
    assert explain("--model", scratch_export, "--image", SAMPLE_CAT, "--out", str(tmp_path / "o"),
                   "--class", "horses") == 2
    assert "'horses' is neither a class name (0, 1)" in capsys.readouterr().err


def test_refuses_a_missing_keras_model(tmp_path, capsys):
    (tmp_path / "export").mkdir()
    assert explain("--model", str(tmp_path / "export"), "--image", SAMPLE_CAT,
                   "--out", str(tmp_path / "o")) == 2
    assert contract.KERAS_MODEL_PATH in capsys.readouterr().err


def test_refuses_a_non_image_file_from_the_command_line(scratch_export, tmp_path):
    text = tmp_path / "report.png"
    text.write_text("quarterly figures\n")
    result = subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "explain", "--model", scratch_export,
         "--image", str(text), "--out", str(tmp_path / "o")],
        cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert f"catsdogs explain: error: {text}: not a JPEG or PNG image" in result.stderr
    assert "Traceback" not in result.stderr
