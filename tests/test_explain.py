"""The explanation library on real Keras models: shapes, value ranges, Grad-CAM
locating known evidence, gradient ascent raising filter activations."""
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import pytest

from components import contract
from components.explain import activations, filters, gradcam, images, render
from components.explain.errors import (
    ClassIndexError,
    ImageDecodeError,
    ModelNotFoundError,
    NotAConvnetError,
    UnknownLayerError,
)
from components.explain.model_graph import ModelGraph, first_conv_of_each_block
from components.explain.model_loading import load_keras_model, resolve_keras_model_file
from components.models.scratch.network import build_scratch_model
from components.models.vgg16.network import Vgg16Parts
from tests.evidence_models import Square, dense_only_model, evidence_model, image_with_squares

SAMPLE_DOG = os.path.join(os.path.dirname(__file__), "..", "data", "sample", "test", "dogs",
                          "dog.1500.jpg")
RED = Square(top=15, left=15, size=50, colour=(230, 20, 20))
GREEN = Square(top=95, left=95, size=30, colour=(20, 230, 20))


@pytest.fixture(scope="module")
def scratch_graph():
    keras.utils.set_random_seed(1)
    return ModelGraph(build_scratch_model())


@pytest.fixture(scope="module")
def vgg16_graph():
    return ModelGraph(Vgg16Parts("none").model)


@pytest.fixture(scope="module")
def dog():
    return images.load_image(SAMPLE_DOG)


def test_image_matches_model_input_contract(dog):
    assert dog.model_input.shape == (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 3)
    assert dog.model_input.dtype == np.float32
    assert 0.0 <= dog.model_input.min() and dog.model_input.max() <= 1.0
    assert dog.original.dtype == np.uint8 and dog.original.shape[2] == 3
    assert dog.original.shape[:2] != dog.model_input.shape[:2]  # the sample is not 150x150


def test_non_image_is_refused_with_its_name(tmp_path):
    bogus = tmp_path / "notes.jpg"
    bogus.write_text("this is not a picture")
    with pytest.raises(ImageDecodeError, match="notes.jpg: not a JPEG or PNG image"):
        images.load_image(str(bogus))
    with pytest.raises(ImageDecodeError, match="no such image file"):
        images.load_image(str(tmp_path / "missing.png"))


def test_scratch_layers(scratch_graph):
    assert scratch_graph.conv_layers == ["conv2d_1", "conv2d_2", "conv2d_3", "conv2d_4"]
    assert scratch_graph.last_conv_layer == "conv2d_4"
    assert len(scratch_graph.feature_layers) == 8
    assert first_conv_of_each_block(scratch_graph) == scratch_graph.conv_layers


def test_nested_vgg16_base_is_reachable(vgg16_graph):
    assert len(vgg16_graph.conv_layers) == 13
    assert vgg16_graph.last_conv_layer == "block5_conv3"
    assert first_conv_of_each_block(vgg16_graph) == [f"block{b}_conv1" for b in range(1, 6)]
    cam = gradcam.GradCam(vgg16_graph)
    model_input = np.random.default_rng(0).uniform(size=(2, 150, 150, 3)).astype(np.float32)
    results = cam.explain_batch(model_input)
    expected = np.asarray(vgg16_graph.model(model_input))[:, 0]
    for result, p in zip(results, expected):
        assert result.heatmap.shape == (9, 9)
        assert result.probabilities[1] == pytest.approx(p, abs=1e-5)


def test_activation_shapes_and_grid(scratch_graph, dog):
    acts = activations.layer_activations(scratch_graph, dog.model_input)
    assert list(acts) == scratch_graph.feature_layers
    assert acts["conv2d_1"].shape == (148, 148, 32)
    assert acts["max_pooling2d_4"].shape == (7, 7, 128)
    assert all(a.min() >= 0 for a in acts.values())  # relu and max pooling outputs
    grid = render.activation_grid(acts["conv2d_1"], title="conv2d_1")
    style = render.GridStyle()
    assert grid.dtype == np.uint8
    assert grid.shape == (style.title_height + 2 * 148 + style.margin,
                          16 * 148 + 15 * style.margin, 3)


def test_channel_normalisation_spreads_any_range():
    channel = np.linspace(0.0, 1e-3, 100).reshape(10, 10)
    shown = render.normalise_channel(channel)
    assert shown.dtype == np.uint8 and shown.max() - shown.min() > 150
    assert np.all(render.normalise_channel(np.zeros((4, 4))) == 128)  # a dead channel stays grey


@pytest.mark.parametrize("softmax,nested", [(False, False), (True, False), (False, True)])
def test_gradcam_heat_lies_where_the_evidence_is(softmax, nested):
    graph = ModelGraph(evidence_model(softmax=softmax, nested=nested))
    cam = gradcam.GradCam(graph)
    assert cam.conv_layer == "evidence_conv"
    image = image_with_squares(RED, GREEN).astype(np.float32) / 255.0
    for class_index, square, other in ((None, RED, GREEN), (0, GREEN, RED)):
        result = cam.explain(image, class_index)
        heat = result.heatmap
        assert heat.shape == (150, 150) and heat.min() >= 0 and heat.max() == pytest.approx(1.0)
        peak = np.unravel_index(np.argmax(heat), heat.shape)
        assert square.contains(*peak)
        inside = heat[square.top:square.top + square.size, square.left:square.left + square.size]
        assert inside.mean() > 0.5
        away = heat.copy()
        away[square.top:square.top + square.size, square.left:square.left + square.size] = 0
        assert away.max() < 0.05
        if class_index is None:  # the red square is the bigger one: class 1 wins
            assert result.class_index == 1 and result.class_score > 0.5
        else:
            assert result.class_index == 0
            assert result.class_score == pytest.approx(result.probabilities[0])
    assert np.sum(result.probabilities) == pytest.approx(1.0, abs=1e-5)


def test_gradcam_superimposed_on_the_original_resolution():
    big = np.zeros((300, 450, 3), np.uint8)
    heat = np.zeros((15, 15), np.float32)
    heat[0:5, 0:5] = 1.0
    shown = render.superimpose(big, heat)
    assert shown.shape == big.shape and shown.dtype == np.uint8
    hot, cold = shown[:80, :120], shown[-80:, -120:]
    assert hot[..., 0].mean() > 40 and hot[..., 2].mean() < 5  # jet: hot is red...
    assert cold[..., 2].mean() > 40 and cold[..., 0].mean() < 5  # ...cold is blue
    assert shown.max() <= int(0.4 * 255) + 1  # jet at 0.4 intensity on a black image


def test_gradcam_refuses_a_class_the_model_does_not_have():
    cam = gradcam.GradCam(ModelGraph(evidence_model()))
    with pytest.raises(ClassIndexError, match="out of range.*2 classes"):
        cam.explain(np.zeros((150, 150, 3), np.float32), 2)


def test_gradient_ascent_raises_each_filters_mean_activation(scratch_graph):
    config = filters.FilterPatternConfig(steps=10, size=48, batch_size=8)
    result = filters.filter_patterns(scratch_graph, "conv2d_2", filter_count=12, config=config)
    assert result.patterns.shape == (12, 48, 48, 3)
    alive = result.initial_activation > 0
    assert alive.sum() >= 6
    assert np.all(result.final_activation[alive] > result.initial_activation[alive])
    assert np.all(result.final_activation >= result.initial_activation)
    grid = render.pattern_grid(result.patterns, title="conv2d_2")
    assert grid.dtype == np.uint8
    assert grid.shape[1] == 8 * 48 + 7 * 5


def test_filter_patterns_of_a_nested_vgg16_layer(vgg16_graph):
    config = filters.FilterPatternConfig(steps=3, size=32, batch_size=4)
    result = filters.filter_patterns(vgg16_graph, "block2_conv1", 4, config)
    assert result.patterns.shape == (4, 32, 32, 3)
    assert result.final_activation.sum() > result.initial_activation.sum()


def test_model_without_convs_is_refused():
    with pytest.raises(NotAConvnetError, match="no 2-D convolution layers"):
        ModelGraph(dense_only_model())


def test_unknown_layer_is_refused_with_the_choices(scratch_graph):
    with pytest.raises(UnknownLayerError, match="'dense'.*choose from: conv2d_1"):
        scratch_graph.feature_model(["dense"])
    with pytest.raises(UnknownLayerError, match="'max_pooling2d_4'"):
        gradcam.GradCam(scratch_graph, "max_pooling2d_4")  # Grad-CAM needs a conv layer


def _save(model, path):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    model.save(path)
    return path


def test_model_found_in_every_pipeline_layout(tmp_path):
    model = evidence_model()
    export = _save(model, str(tmp_path / "export" / contract.KERAS_MODEL_PATH))
    artifact = _save(model, str(tmp_path / "artifact" / "Format-Serving" / contract.KERAS_MODEL_PATH))
    _save(model, str(tmp_path / "served" / "7" / contract.KERAS_MODEL_PATH))
    latest = _save(model, str(tmp_path / "served" / "12" / contract.KERAS_MODEL_PATH))
    assert resolve_keras_model_file(str(tmp_path / "export")) == export
    assert resolve_keras_model_file(str(tmp_path / "artifact")) == artifact
    assert resolve_keras_model_file(str(tmp_path / "served")) == latest
    assert resolve_keras_model_file(export) == export
    loaded = load_keras_model(str(tmp_path / "served" / "12"))
    assert loaded.name == model.name


def test_missing_keras_model_is_explained(tmp_path):
    (tmp_path / "saved").mkdir()
    (tmp_path / "saved" / "saved_model.pb").write_bytes(b"")
    with pytest.raises(ModelNotFoundError, match="SavedModel without its Keras model.*keras/model.keras"):
        resolve_keras_model_file(str(tmp_path / "saved"))
    with pytest.raises(ModelNotFoundError, match="no such model directory"):
        resolve_keras_model_file(str(tmp_path / "nowhere"))


def test_explanations_of_a_mixed_precision_model_are_float32(dog):
    """Trainers may build their models under mixed_bfloat16 (precision=auto on AMX
    CPUs); Grad-CAM, activations and filter patterns still work, in float32."""
    from components.training import precision

    with precision.policy_scope("mixed_bfloat16"):
        keras.utils.set_random_seed(2)
        graph = ModelGraph(build_scratch_model())
    assert graph.model.get_layer("conv2d_1").compute_dtype == "bfloat16"
    heatmap = np.asarray(gradcam.GradCam(graph).explain(dog.model_input).heatmap)
    assert heatmap.dtype == np.float32 and np.all(np.isfinite(heatmap))
    layer_outputs = activations.layer_activations(graph, dog.model_input, ["conv2d_1"])
    assert layer_outputs["conv2d_1"].dtype == np.float32
    config = filters.FilterPatternConfig(size=48, steps=2, batch_size=2)
    patterns = filters.filter_patterns(graph, "conv2d_1", filter_count=2, config=config)
    assert patterns.patterns.dtype == np.float32 and np.all(np.isfinite(patterns.final_activation))
