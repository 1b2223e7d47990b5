"""Any number of classes: the book's MNIST convnet, softmax heads, N-class export and
serving, TFMA's multi-class config, Grad-CAM on a softmax model, the model registry
and the image shape Transform follows. Real images throughout: three classes of
scikit-learn's handwritten digits (prepare-data --digits)."""
import json
import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import trainer_inputs
from components import contract, preprocessing
from components.evaluation import eval_config, report_page, tfma_results
from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import BOOK_IMAGE_SHAPE, IMAGENET_IMAGE_SHAPE, MNIST_IMAGE_SHAPE, ImageShape
from components.models.mnist import trainer as mnist
from components.models.mnist.hparams import MnistHParams
from components.models.mnist.network import build_mnist_model
from components.models.scratch import trainer as scratch
from components.models.scratch.network import build_scratch_model
from components.models.vgg16.hparams import WEIGHTS_NONE
from components.models.vgg16.network import Vgg16Parts
from components.training import common
from components.training.heads import classifier_output
from pipeline import model_registry
from pipeline.configs import ModelSettings, PipelineConfig, select_models
from pipeline.prepare_data import digits_split
from tests.examples_artifacts import split_uri
from tests.image_files import SAMPLE_DIR

TOY_CLASSES = ("0", "1", "2")
TOY_IMAGES_PER_CLASS = {"train": 30, "validation": 10, "test": 10}


# -- the MNIST convnet and N-class heads ---------------------------------------------

def test_mnist_convnet_is_listings_5_1_and_5_2():
    model = build_mnist_model()
    conv_part = [layer for layer in model.layers[1:] if not isinstance(
        layer, (keras.layers.Flatten, keras.layers.Dense))]
    assert [type(layer).__name__ for layer in conv_part] == [
        "Conv2D", "MaxPooling2D", "Conv2D", "MaxPooling2D", "Conv2D"]
    assert sum(layer.count_params() for layer in conv_part) == 55_744
    assert model.count_params() == 93_322
    assert model.input_shape == (None, 28, 28, 1) and model.output_shape == (None, 10)
    assert model.layers[-1].get_config()["activation"] == "softmax"
    assert [layer.units for layer in model.layers if isinstance(layer, keras.layers.Dense)] == [64, 10]


def test_mnist_hyperparameters_are_listing_5_3():
    hp = MnistHParams()
    assert (hp.epochs, hp.batch_size, hp.learning_rate) == (5, 64, 1e-3)
    assert MnistHParams.from_custom_config(hp.as_custom_config()) == hp
    with pytest.raises(ValueError, match="unknown MnistHParams hyper-parameters"):
        MnistHParams.from_custom_config({"epoch": 3})


@pytest.mark.parametrize("n_classes, units, activation", [(2, 1, "sigmoid"), (3, 3, "softmax"),
                                                          (10, 10, "softmax")])
def test_two_classes_get_a_sigmoid_unit_more_get_a_softmax(n_classes, units, activation):
    for model in (build_scratch_model(n_classes), build_mnist_model(n_classes)):
        assert model.output_shape == (None, units)
        assert model.layers[-1].get_config()["activation"] == activation
    with pytest.raises(ValueError, match="at least two classes"):
        classifier_output(1)


def test_vgg16_head_follows_the_class_count():
    parts = Vgg16Parts(WEIGHTS_NONE, dense_units=8, n_classes=4)
    assert parts.model.output_shape == (None, 4)
    _, top = parts.split_at("block5_pool")
    assert top.output_shape == (None, 4)


def test_loss_follows_the_head():
    binary, multi = build_mnist_model(2), build_mnist_model(10)
    common.compile_classifier(binary, 1e-3, 2)
    common.compile_classifier(multi, 1e-3, 10)
    assert isinstance(binary.loss, keras.losses.BinaryCrossentropy)
    assert multi.loss == "sparse_categorical_crossentropy"
    assert isinstance(multi.optimizer, keras.optimizers.RMSprop)


# -- the model registry and the image shape ------------------------------------------

def test_registry_describes_every_model_once():
    assert len({m.served_name for m in model_registry.MODELS}) == len(model_registry.MODELS)
    for model in model_registry.MODELS:
        assert callable(model.load_run_fn())
        settings = ModelSettings.defaults(model.served_name)
        assert isinstance(settings.hparams, model.hparams_type)
        assert settings.thresholds == model.default_thresholds
        assert model_registry.get(model.key) is model_registry.get(model.served_name) is model
    mnist_entry = model_registry.get(model_registry.get("mnist").served_name)
    assert (mnist_entry.key, mnist_entry.run_fn) == ("mnist", "components.models.mnist.trainer.run_fn")
    assert mnist_entry.image_shape == ImageShape(28, 28, 1)
    assert mnist_entry.default_thresholds.min_accuracy == 0.95
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        model_registry.get("resnet")


def test_one_transform_serves_the_largest_shape_and_other_channels_are_refused():
    assert model_registry.image_shape_for(["scratch"]) == BOOK_IMAGE_SHAPE
    assert model_registry.image_shape_for(["scratch", "vgg16"]) == IMAGENET_IMAGE_SHAPE
    assert model_registry.image_shape_for(["mnist"]) == MNIST_IMAGE_SHAPE
    with pytest.raises(ValueError, match=r"different channels \(150x150x3: scratch; 28x28x1: mnist\)"):
        model_registry.image_shape_for(["cats_vs_dogs_scratch", "mnist_convnet"])  # served names
    from tests.test_local_runner import parse
    with pytest.raises(ValueError, match="different channels"):
        parse("--models", "scratch,mnist")
    assert parse("--models", "mnist").served_names == (model_registry.get("mnist").served_name,)
    with pytest.raises(ValueError, match="different channels"):
        PipelineConfig("d", "p", "s", models=select_models(["scratch", "mnist"]))


def test_create_pipeline_for_the_mnist_convnet(tmp_path):
    from pipeline.pipeline import component_by_id, create_pipeline

    config = PipelineConfig.for_local_run("data/digits", str(tmp_path),
                                          models=select_models([model_registry.get("mnist").served_name]))
    pipeline = create_pipeline(config)
    transform_config = json.loads(component_by_id(pipeline, "Transform").exec_properties["custom_config"])
    assert ImageShape.from_custom_config(transform_config) == MNIST_IMAGE_SHAPE
    trainer = component_by_id(pipeline, "Trainer_mnist")
    assert trainer.exec_properties["run_fn"] == "components.models.mnist.trainer.run_fn"
    assert json.loads(trainer.exec_properties["custom_config"]) == MnistHParams().as_custom_config()
    for component_id in ("ExplainGallery_mnist", "BaselineLookup_mnist", "Pusher_mnist",
                         "EvaluationReport_mnist"):
        assert component_by_id(pipeline, component_id) is not None, component_id
    assert component_by_id(pipeline, "Pusher_mnist").exec_properties["model_name"] == "mnist_convnet"
    assert component_by_id(pipeline, "Trainer_scratch") is None


def test_grayscale_transform_of_jpeg_and_png_bytes(digits_dir):
    png = open(_first_file(os.path.join(digits_dir, "test", "7")), "rb").read()
    jpeg = open(_first_file(os.path.join(SAMPLE_DIR, "test", "cats")), "rb").read()
    outputs = preprocessing.preprocessing_fn(
        {contract.IMAGE_KEY: tf.constant([[png], [jpeg]]), contract.LABEL_KEY: tf.constant([[7], [0]], tf.int64)},
        custom_config=MNIST_IMAGE_SHAPE.as_custom_config())
    images = outputs[contract.TRANSFORMED_IMAGE_KEY].numpy()
    assert images.shape == (2, 28, 28, 1)
    assert 0.0 <= images.min() and images.max() <= 1.0 and images[0].max() > 0.5
    default = preprocessing.preprocessing_fn({contract.IMAGE_KEY: tf.constant([[png]])})
    assert default[contract.TRANSFORMED_IMAGE_KEY].shape == (1,) + BOOK_IMAGE_SHAPE.as_tuple
    with pytest.raises(ValueError, match="channels must be 1"):
        ImageShape.from_custom_config({"image_shape": {"height": 28, "width": 28, "channels": 2}})


# -- three real classes through training, export, TFMA and Grad-CAM -------------------

def _first_file(folder):
    return os.path.join(folder, sorted(os.listdir(folder))[0])


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    """prepare-data --digits: 1,797 real handwritten digits as 28x28 PNG folders."""
    root = str(tmp_path_factory.mktemp("digits_source") / "digits")
    digits_split(root)
    return root


@pytest.fixture(scope="module")
def toy(digits_dir, tmp_path_factory):
    """Three digit classes (real handwritten digits), a few images per split."""
    digits = digits_dir
    root = tmp_path_factory.mktemp("three_classes")
    images = root / "images"
    for split, count in TOY_IMAGES_PER_CLASS.items():
        for name in TOY_CLASSES:
            target = images / split / name
            target.mkdir(parents=True)
            for file in sorted(os.listdir(os.path.join(digits, split, name)))[:count]:
                shutil.copy(os.path.join(digits, split, name, file), target / file)
    examples = trainer_inputs.write_examples(str(images), str(root / "examples"))
    first = _first_file(str(images / "train" / "0"))
    transform = trainer_inputs.build_transform_graph(first, str(root / "transform_28x28x1"),
                                                       MNIST_IMAGE_SHAPE.as_custom_config())
    return {"root": root, "images": str(images), "examples": examples, "transform": transform, "first": first}


@pytest.fixture(scope="module")
def mnist_run(toy, tmp_path_factory):
    fn_args = trainer_inputs.fn_args(toy["examples"], toy["transform"], str(tmp_path_factory.mktemp("mnist")),
                                       {"epochs": 2, "batch_size": 16, "seed": 0})
    mnist.run_fn(fn_args)
    return fn_args


def _test_files(toy):
    return [(os.path.join(toy["images"], "test", name, f), name) for name in TOY_CLASSES
            for f in sorted(os.listdir(os.path.join(toy["images"], "test", name)))]


def test_softmax_export_serves_class_names_of_real_pngs(toy, mnist_run):
    served = tf.saved_model.load(mnist_run.serving_model_dir)
    files = _test_files(toy)
    outputs = served.signatures[contract.SERVING_SIGNATURE](
        **{contract.SERVING_INPUT_KEY: tf.constant([open(f, "rb").read() for f, _ in files])})
    probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
    assert probabilities.shape == (len(files), 3)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
    class_ids = outputs[contract.CLASS_IDS_KEY].numpy()
    np.testing.assert_array_equal(class_ids, probabilities.argmax(axis=1))
    names = [c.decode() for c in outputs[contract.CLASSES_KEY].numpy()]
    assert names == [TOY_CLASSES[i] for i in class_ids]
    # The export is Transform's decoding then the trained Keras model, whatever it learnt
    # (how well a few epochs train differs between CPUs, so accuracy is not asserted).
    from components.explain.model_loading import load_keras_model
    inputs = np.stack([preprocessing.decode_image(tf.constant(open(f, "rb").read()), MNIST_IMAGE_SHAPE).numpy()
                       for f, _ in files])
    np.testing.assert_allclose(probabilities, load_keras_model(mnist_run.serving_model_dir).predict(
        inputs, verbose=0), atol=1e-5)

    examples_outputs = served.signatures[contract.EXAMPLES_SIGNATURE](**{contract.EXAMPLES_INPUT_KEY: tf.constant(
        [trainer_inputs.make_example(open(f, "rb").read(), 0, f).SerializeToString() for f, _ in files[:3]])})
    assert contract.POSITIVE_PROBABILITY_KEY not in examples_outputs  # binary models only
    assert examples_outputs[contract.PROBABILITIES_KEY].shape == (3, 3)


def test_scratch_convnet_trains_a_softmax_head_on_three_classes(toy, tmp_path):
    transform = trainer_inputs.build_transform_graph(toy["first"], str(tmp_path / "transform_150x150x3"))
    fn_args = trainer_inputs.fn_args(toy["examples"], transform, str(tmp_path / "scratch"),
                                       {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "seed": 1})
    scratch.run_fn(fn_args)
    served = tf.saved_model.load(fn_args.serving_model_dir).signatures[contract.SERVING_SIGNATURE]
    outputs = served(**{contract.SERVING_INPUT_KEY: tf.constant([open(toy["first"], "rb").read()])})
    assert outputs[contract.PROBABILITIES_KEY].shape == (1, 3)
    assert outputs[contract.CLASSES_KEY].numpy()[0].decode() in TOY_CLASSES


def test_a_model_refuses_a_transform_of_other_channels(toy, tmp_path):
    fn_args = trainer_inputs.fn_args(toy["examples"], toy["transform"], str(tmp_path), {"epochs": 1})
    with pytest.raises(ValueError, match="takes 150x150x3 images, but Transform produces 28x28x1: a model cannot "
                                         "change the number of channels"):
        scratch.run_fn(fn_args)


def test_tfma_multiclass_metrics_agree_with_the_served_model(toy, mnist_run, tmp_path):
    import tensorflow_model_analysis as tfma

    config = eval_config.build_eval_config(BlessingThresholds(min_accuracy=0.5), n_classes=3)
    for metric in config.metrics_specs[0].metrics:  # no baseline here: keep the value threshold only
        for per_slice in metric.per_slice_thresholds:
            per_slice.threshold.ClearField("change_threshold")
    output = str(tmp_path / "tfma")
    tfma.run_model_analysis(
        eval_shared_model=tfma.default_eval_shared_model(mnist_run.serving_model_dir, eval_config=config),
        eval_config=config, data_location=os.path.join(split_uri(toy["examples"]), "*"),
        file_format="tfrecords", output_path=output)
    class_names = list(TOY_CLASSES)
    slices = tfma_results.load_tfma_metrics(output, class_names)
    overall = slices["overall"]
    assert tfma_results.accuracy_metric_of(slices) == eval_config.MULTICLASS_ACCURACY_METRIC
    assert sorted(name for name in slices if name != "overall") == [f"label={c}" for c in TOY_CLASSES]

    served = tf.saved_model.load(mnist_run.serving_model_dir).signatures[contract.SERVING_SIGNATURE]
    files = _test_files(toy)
    predicted = served(**{contract.SERVING_INPUT_KEY: tf.constant([open(f, "rb").read() for f, _ in files])})[
        contract.CLASS_IDS_KEY].numpy()
    labels = np.array([class_names.index(label) for _, label in files])
    assert overall.get(eval_config.MULTICLASS_ACCURACY_METRIC) == pytest.approx(np.mean(predicted == labels))
    matrix = overall.class_confusion[""] if "" in overall.class_confusion else \
        next(iter(overall.class_confusion.values()))
    expected = np.zeros((3, 3))
    np.add.at(expected, (labels, predicted), 1)
    np.testing.assert_array_equal(matrix, expected)
    assert report_page.confusion_matrix_png(matrix, class_names, "test").startswith("data:image/png;base64,")
    assert tfma_results.accuracy_thresholds(output)["min_accuracy"] == pytest.approx(0.5)


def test_multiclass_eval_config_for_ten_classes():
    config = eval_config.build_eval_config(BlessingThresholds(0.97, 0.01), n_classes=10)
    (spec,) = config.model_specs
    assert (spec.signature_name, spec.prediction_key) == (contract.EXAMPLES_SIGNATURE, contract.PROBABILITIES_KEY)
    metrics = {m.class_name: m for m in config.metrics_specs[0].metrics}
    assert {"ExampleCount", "SparseCategoricalAccuracy", "SparseTopKCategoricalAccuracy",
            "SparseCategoricalCrossentropy", "MultiClassConfusionMatrixAtThresholds"} <= set(metrics)
    assert json.loads("{" + metrics["SparseTopKCategoricalAccuracy"].config + "}") == {"k": 3}
    bound = metrics["SparseCategoricalAccuracy"].per_slice_thresholds[0].threshold.value_threshold.lower_bound
    assert bound.value == 0.97
    assert [list(s.feature_keys) for s in config.slicing_specs] == [[], [contract.LABEL_KEY]]
    three = {m.class_name for m in eval_config.build_eval_config(BlessingThresholds(0.9), 3).metrics_specs[0].metrics}
    assert "SparseTopKCategoricalAccuracy" not in three  # top-3 of three classes says nothing


def test_evaluator_switches_the_config_to_the_data_class_count(tmp_path):
    from google.protobuf import json_format
    from tfx.types import standard_artifacts

    from components.evaluation.evaluator import eval_config_for_data

    examples = standard_artifacts.Examples()
    examples.uri = str(tmp_path)
    binary_json = json_format.MessageToJson(eval_config.build_eval_config(BlessingThresholds(0.97, 0.02)))
    properties = {"eval_config": binary_json, "example_splits": "[]"}
    (tmp_path / contract.CLASS_NAMES_FILE).write_text(json.dumps(["cats", "dogs"]))
    assert eval_config_for_data({"examples": [examples]}, properties) is properties

    (tmp_path / contract.CLASS_NAMES_FILE).write_text(json.dumps([str(d) for d in range(10)]))
    switched = eval_config_for_data({"examples": [examples]}, properties)
    config = json_format.Parse(switched["eval_config"], eval_config.config_pb2.EvalConfig())
    assert eval_config.is_multiclass(config)
    thresholds = eval_config.blessing_thresholds(config)
    assert thresholds.min_accuracy == 0.97 and thresholds.max_accuracy_drop == pytest.approx(0.02)
    assert switched["example_splits"] == "[]"


def test_gradcam_and_gallery_on_the_softmax_model(toy, mnist_run):
    from components.explain import gallery
    from components.explain.gradcam import GradCam
    from components.explain.model_graph import ModelGraph
    from components.explain.model_loading import load_keras_model
    from components.formats.examples import LabelledImage

    graph = ModelGraph(load_keras_model(mnist_run.serving_model_dir))
    assert graph.input_shape == (28, 28, 1) and graph.last_conv_layer == "conv2d_3"
    files = _test_files(toy)[::10]
    inputs = np.stack([preprocessing.decode_image(tf.constant(open(f, "rb").read()), MNIST_IMAGE_SHAPE).numpy()
                       for f, _ in files])
    cam = GradCam(graph)
    assert cam.n_classes == 3
    for requested in (None, 2):
        for result in cam.explain_batch(inputs, [requested] * len(inputs)):
            assert result.heatmap.shape == (3, 3) and 0.0 <= result.heatmap.min() <= result.heatmap.max() <= 1.0
            expected = int(np.argmax(result.probabilities)) if requested is None else requested
            assert result.class_index == expected
            assert result.class_score == pytest.approx(result.probabilities[expected])

    examples = [LabelledImage(filename=f"{label}/{os.path.basename(f)}", label=TOY_CLASSES.index(label),
                              image_bytes=open(f, "rb").read()) for f, label in files]
    page = gallery.build_gallery(graph, examples, list(TOY_CLASSES),
                                 gallery.GalleryConfig(filter_count=4, filter_steps=3, filter_size=32),
                                 log=lambda message: None)
    assert len(page.entries) == len(examples) and page.filter_layer == "conv2d_2"
    assert page.entries[0].gradcam.shape[2] == 3 and page.entries[0].gradcam.shape[0] >= 28 * 8
    assert page.filter_grid.ndim == 3 and page.filter_grid.shape[2] == 3
    assert "Grad-CAM" in page.html
