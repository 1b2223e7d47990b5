"""The book's models, exactly: parameter counts and trainable weights per VGG16 phase."""
import dataclasses
import pickle

import keras
import numpy as np
import pytest
import tensorflow as tf

from components.image_shape import BOOK_IMAGE_SHAPE, IMAGENET_IMAGE_SHAPE, MNIST_IMAGE_SHAPE
from components.models.mnist.hparams import MnistHParams
from components.models.mnist.network import build_mnist_model
from components.models.scratch import trainer as scratch
from components.models.scratch.hparams import BOOK_SCRATCH, ScratchHParams
from components.models.scratch.network import build_scratch_model
from components.models.vgg16 import weights as vgg16_weights
from components.models.vgg16.hparams import WEIGHTS_NONE, WEIGHTS_OFFLINE, Vgg16HParams
from components.models.vgg16.network import Vgg16Parts
from components.training import common, precision
from components.training.heads import INPUT_RESIZE_LAYER_NAME, apply_layers, build_head
from components.training.hparams import LISTING_5_14, LISTING_5_21
from pipeline import model_registry


def test_scratch_convnet_is_listing_5_13():
    model = build_scratch_model()
    assert model.count_params() == 3_453_121
    assert [type(layer).__name__ for layer in model.layers[1:]] == (
        ["Conv2D", "MaxPooling2D"] * 4 + ["Flatten", "Dropout", "Dense", "Dense"])
    assert model.output_shape == (None, 1)


@pytest.fixture(scope="module")
def vgg_parts():
    return Vgg16Parts(WEIGHTS_NONE, dense_units=256, dropout=0.0)


def test_vgg16_base_and_model_sizes(vgg_parts):
    assert vgg_parts.base.count_params() == 14_714_688
    assert vgg_parts.model.count_params() == 16_812_353  # the book's model.summary()


def test_feature_extraction_trains_only_the_head(vgg_parts):
    vgg_parts.freeze_base()
    assert len(vgg_parts.model.trainable_weights) == 4


def test_fine_tuning_unfreezes_block5_only(vgg_parts):
    vgg_parts.unfreeze_from("block5_conv1")
    trainable = [layer.name for layer in vgg_parts.base.layers if layer.trainable and layer.weights]
    assert trainable == ["block5_conv1", "block5_conv2", "block5_conv3"]
    assert len(vgg_parts.model.trainable_weights) == 10
    with pytest.raises(ValueError, match="not a VGG16 layer"):
        vgg_parts.unfreeze_from("block9_conv1")


def test_split_model_computes_the_full_model(vgg_parts):
    images = np.random.default_rng(0).uniform(size=(2, 150, 150, 3)).astype("float32")
    trunk, top = vgg_parts.split_at("block4_pool")
    assert trunk.output_shape == (None, 9, 9, 512)
    np.testing.assert_allclose(top(trunk(images)), vgg_parts.model(images), rtol=1e-4, atol=1e-6)
    between = vgg_parts.segment("block4_pool", "block5_pool")
    assert between.output_shape == (None, 4, 4, 512)


def test_vgg16_upsamples_a_smaller_transform_output_in_its_graph():
    """transform_shape: the model takes Transform's images and resizes them inside its own graph
    (so the served model does too); the conv base and the split work at the network's size."""
    parts = Vgg16Parts(WEIGHTS_NONE, dense_units=8, image_shape=IMAGENET_IMAGE_SHAPE,
                       transform_shape=BOOK_IMAGE_SHAPE)
    assert parts.model.input_shape == (None, 150, 150, 3)
    assert parts.base.input_shape == (None, 224, 224, 3)
    assert parts.model.count_params() == 14_714_688 + 7 * 7 * 512 * 8 + 8 + 8 + 1
    trunk, top = parts.split_at("block4_pool")
    assert trunk.input_shape == (None, 150, 150, 3) and trunk.output_shape == (None, 14, 14, 512)
    images = np.random.default_rng(0).uniform(size=(2, 150, 150, 3)).astype("float32")
    np.testing.assert_allclose(top(trunk(images)), parts.model(images), rtol=1e-4, atol=1e-6)
    resized = parts.model.get_layer(INPUT_RESIZE_LAYER_NAME)(images)
    np.testing.assert_allclose(resized, tf.image.resize(images, (224, 224), antialias=True), rtol=1e-5, atol=1e-6)
    pooled = Vgg16Parts(WEIGHTS_NONE, dense_units=8, image_shape=IMAGENET_IMAGE_SHAPE, pooling="average")
    assert pooled.model.count_params() == 14_714_688 + 512 * 8 + 8 + 8 + 1  # whatever the size
    assert INPUT_RESIZE_LAYER_NAME not in [layer.name for layer in pooled.model.layers]


def test_scratch_convnet_in_a_run_with_vgg16_shrinks_its_input_as_transform_would():
    """Beside VGG16 the run's Transform makes 224x224 images; the scratch convnet keeps the
    book's 150x150 network (same parameters) behind an antialiased resize."""
    plain = build_scratch_model()
    behind_resize = build_scratch_model(2, BOOK_IMAGE_SHAPE, transform_shape=IMAGENET_IMAGE_SHAPE)
    assert behind_resize.input_shape == (None, 224, 224, 3)
    assert behind_resize.count_params() == plain.count_params() == 3_453_121
    behind_resize.set_weights(plain.get_weights())
    images = np.random.default_rng(0).uniform(size=(2, 224, 224, 3)).astype("float32")
    expected = plain(tf.image.resize(images, (150, 150), antialias=True))
    np.testing.assert_allclose(behind_resize(images), expected, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="takes 150x150x3 images, but Transform produces 28x28x1"):
        build_scratch_model(2, BOOK_IMAGE_SHAPE, transform_shape=MNIST_IMAGE_SHAPE)


def test_average_pooling_head_reads_each_feature_map_mean():
    layers = build_head(dense_units=3, dropout=0.0, pooling="average")
    features = keras.Input((4, 4, 2))
    model = keras.Model(features, apply_layers(features, layers))
    x = np.random.default_rng(0).uniform(size=(2, 4, 4, 2)).astype("float32")
    (dense_kernel, dense_bias), (out_kernel, out_bias) = layers[1].get_weights(), layers[2].get_weights()
    hidden = np.maximum(x.mean(axis=(1, 2)) @ dense_kernel + dense_bias, 0)
    expected = 1 / (1 + np.exp(-(hidden @ out_kernel + out_bias)))
    np.testing.assert_allclose(model(x), expected, rtol=1e-5)
    with pytest.raises(ValueError, match="head pooling must be one of flatten, average"):
        build_head(8, 0.0, pooling="max")
    with pytest.raises(ValueError, match="head_pooling must be one of"):
        Vgg16HParams(head_pooling="max")


def test_offline_imagenet_weights_load_with_torch_preprocessing():
    expected = vgg16_weights.load_offline_weights()
    base = vgg16_weights.conv_base(WEIGHTS_OFFLINE)
    np.testing.assert_array_equal(base.get_layer("block1_conv1").get_weights()[0], expected[0][0])
    np.testing.assert_array_equal(base.get_layer("block5_conv3").get_weights()[1], expected[12][1])
    normalise = vgg16_weights.preprocessing_layer(WEIGHTS_OFFLINE)
    out = normalise(np.full((1, 1, 1, 3), 0.485, "float32")).numpy()[0, 0, 0]
    assert abs(out[0]) < 1e-5 and out[1] > 0


def test_keras_weights_file_is_read_as_caffe_bgr(tmp_path):
    reference = keras.applications.VGG16(weights=None, include_top=False, input_shape=(150, 150, 3))
    path = str(tmp_path / "vgg16_notop.weights.h5")
    reference.save_weights(path)
    base = vgg16_weights.conv_base(path)
    kernel = reference.get_layer("block1_conv1").get_weights()[0]
    np.testing.assert_array_equal(base.get_layer("block1_conv1").get_weights()[0], kernel[:, :, ::-1, :])
    caffe = vgg16_weights.preprocessing_layer(path)
    np.testing.assert_allclose(caffe(np.ones((1, 1, 1, 3), "float32")).numpy()[0, 0, 0],
                               255.0 - np.array(vgg16_weights.CAFFE_MEAN_RGB), rtol=1e-5)


def test_missing_weights_file_is_named():
    with pytest.raises(FileNotFoundError, match="no/such/file.h5"):
        vgg16_weights.conv_base("no/such/file.h5")


def test_weights_pickle_may_hold_only_arrays(tmp_path):
    path = tmp_path / "evil.ckpt"
    path.write_bytes(pickle.dumps({"VGG16_0": print}))
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        vgg16_weights.load_offline_weights(str(path))


def test_hparams_round_trip_through_custom_config():
    hp = Vgg16HParams(weights=WEIGHTS_OFFLINE, fine_tune_epochs=3)
    assert Vgg16HParams.from_custom_config(hp.as_custom_config()) == hp
    assert hp.augmentation == LISTING_5_21
    assert ScratchHParams.from_custom_config({"epochs": 2}).epochs == 2
    with pytest.raises(ValueError, match="unknown ScratchHParams"):
        ScratchHParams.from_custom_config({"epoch": 2})
    with pytest.raises(ValueError, match="feature_extraction"):
        Vgg16HParams(feature_extraction="slow")


def test_book_preset_is_listing_5_14_and_the_default_keeps_the_best_epoch():
    assert model_registry.get("scratch").preset("book") is BOOK_SCRATCH
    assert model_registry.get("scratch").preset("default") == ScratchHParams()
    vgg16_book = model_registry.get("vgg16").preset("book")
    assert (vgg16_book.feature_extraction, vgg16_book.feature_extraction_epochs, vgg16_book.steps_per_epoch,
            vgg16_book.batch_size, vgg16_book.feature_extraction_learning_rate) == ("augmented", 30, 100, 20, 2e-5)
    assert (vgg16_book.fine_tune_epochs, vgg16_book.fine_tune_augment, vgg16_book.fine_tune_learning_rate,
            vgg16_book.head_pooling, vgg16_book.weights) == (100, True, 1e-5, "flatten", "offline")
    assert vgg16_book.augmentation == LISTING_5_21
    vgg16_default = model_registry.get("vgg16").preset("default")
    assert (vgg16_default.feature_extraction, vgg16_default.fine_tune_augment, vgg16_default.cached_augmented_copies,
            vgg16_default.head_pooling, vgg16_default.weights) == ("fast", False, 5, "average", "offline")
    assert model_registry.preset_names() == ("default", "book")
    book = BOOK_SCRATCH
    assert (book.epochs, book.steps_per_epoch, book.batch_size, book.learning_rate) == (100, 100, 32, 1e-4)
    assert book.reduce_lr_patience is None and not book.keep_best_weights and book.precision == "float32"
    assert book.weight_decay is None and book.ema_momentum is None  # the book's plain RMSprop
    default = ScratchHParams()
    assert default.keep_best_weights and default.reduce_lr_patience is not None
    assert default.augmentation == book.augmentation == LISTING_5_14
    assert ScratchHParams.from_custom_config(book.as_custom_config()) == book


def test_bad_precision_and_schedule_are_named():
    for hparams in (ScratchHParams, Vgg16HParams, MnistHParams):
        with pytest.raises(ValueError, match="precision must be one of auto, float32"):
            hparams(precision="float16")
    with pytest.raises(ValueError, match="reduce_lr_factor"):
        ScratchHParams(reduce_lr_factor=1.5)
    with pytest.raises(ValueError, match="reduce_lr_patience"):
        ScratchHParams(reduce_lr_patience=0)


def test_cosine_schedule_warms_up_then_decays_to_the_floor():
    hp = ScratchHParams(epochs=10, warmup_epochs=2, learning_rate=1e-3, min_learning_rate=1e-5,
                        learning_rate_schedule="cosine", reduce_lr_patience=None)
    schedule = scratch.learning_rate(hp, steps_per_epoch=5)
    rate = lambda step: float(schedule(step))  # noqa: E731
    assert rate(0) == 0.0
    assert rate(5) == pytest.approx(0.5e-3)
    assert rate(10) == pytest.approx(1e-3)
    assert rate(30) == pytest.approx((1e-5 + 1e-3) / 2, rel=1e-4)
    assert rate(50) == pytest.approx(1e-5)
    assert scratch.learning_rate(ScratchHParams(), 5) == ScratchHParams().learning_rate
    # A resumed run restores the optimizer's iterations, and with them its place in the schedule.
    model = build_scratch_model()
    common.compile_classifier(model, schedule, 2, label_smoothing=0.1)
    model.optimizer.build(model.trainable_variables)
    model.optimizer.iterations.assign(30)
    assert float(np.asarray(model.optimizer.learning_rate)) == pytest.approx(rate(30), rel=1e-5)
    assert model.loss.get_config()["label_smoothing"] == 0.1
    decayed = build_scratch_model()
    common.compile_classifier(decayed, 1e-3, 2, weight_decay=1e-4)
    assert decayed.optimizer.weight_decay == 1e-4 and model.optimizer.weight_decay is None


def test_averaged_weights_are_validated_and_kept(tmp_path):
    """With ema_momentum, the scratch Trainer's checkpoint keeps the averaged weights that
    validation scored, not the last step's."""
    hp = ScratchHParams(ema_momentum=0.9, reduce_lr_patience=None)
    chosen = scratch.Callbacks(hp, str(tmp_path), started=0.0)
    kinds = [type(callback) for callback in chosen.steering]
    assert kinds == [keras.callbacks.SwapEMAWeights, keras.callbacks.ModelCheckpoint]
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, activation="sigmoid",
                                                                    kernel_initializer="zeros")])
    common.compile_classifier(model, 0.05, 2, ema_momentum=hp.ema_momentum)
    x = np.linspace(-1, 1, 16, dtype=np.float32).reshape(-1, 1)
    y = (x > 0.3).astype(np.float32)  # accuracy rises as the boundary moves: several checkpoints
    history = model.fit(x, y, epochs=6, batch_size=4, shuffle=False, validation_data=(x, y),
                        callbacks=chosen.steering, verbose=0).history
    kept_epoch = common.restore_best_weights(model, str(tmp_path), history)
    kept_loss = model.evaluate(x, y, verbose=0)[0]
    assert kept_loss == pytest.approx(history["val_loss"][kept_epoch - 1], rel=1e-5)
    raw = [average.numpy() for average in model.optimizer._model_variables_moving_average]
    assert not np.allclose(raw[0], model.get_weights()[0])  # the checkpoint's average is not the raw weights


def test_schedule_settings_that_cannot_work_are_refused():
    with pytest.raises(ValueError, match="reduce_lr_patience to null"):
        ScratchHParams(learning_rate_schedule="cosine")
    with pytest.raises(ValueError, match="learning_rate_schedule must be one of"):
        ScratchHParams(learning_rate_schedule="step")
    with pytest.raises(ValueError, match="warmup_epochs applies"):
        ScratchHParams(warmup_epochs=3)
    with pytest.raises(ValueError, match="warmup_epochs must be in"):
        ScratchHParams(epochs=3, warmup_epochs=3, learning_rate_schedule="cosine", reduce_lr_patience=None)
    with pytest.raises(ValueError, match="label_smoothing"):
        ScratchHParams(label_smoothing=1.0)
    with pytest.raises(ValueError, match="weight_decay must be > 0 or None"):
        ScratchHParams(weight_decay=0.0)
    with pytest.raises(ValueError, match="ema_momentum must be in"):
        ScratchHParams(ema_momentum=1.0)


def test_auto_precision_follows_the_hardware(tmp_path):
    assert precision.auto_policy(True, frozenset()) == "mixed_float16"
    assert precision.auto_policy(False, frozenset({"avx2", "amx_bf16"})) == "mixed_bfloat16"
    assert precision.auto_policy(False, frozenset({"avx512_bf16"})) == "mixed_bfloat16"
    assert precision.auto_policy(False, frozenset({"avx2", "avx512f"})) == "float32"
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nflags\t\t: fpu avx2 amx_bf16\n\nprocessor\t: 1\nflags\t\t: fpu\n")
    assert precision.cpu_flags(str(cpuinfo)) == frozenset({"fpu", "avx2", "amx_bf16"})
    assert precision.cpu_flags(str(tmp_path / "missing")) == frozenset()
    assert precision.resolve("float32") == "float32"


@pytest.mark.parametrize("build, params", [(build_scratch_model, 3_453_121), (build_mnist_model, 93_322)])
def test_mixed_precision_models_keep_their_size_and_a_float32_output(build, params):
    before = keras.config.dtype_policy().name
    with precision.policy_scope("mixed_bfloat16"):
        model = build()
    assert keras.config.dtype_policy().name == before
    assert model.count_params() == params
    assert model.get_layer("conv2d_1").compute_dtype == "bfloat16"
    assert model.get_layer("conv2d_1").variable_dtype == "float32"
    assert model.get_layer("predictions").compute_dtype == "float32"
    output = model(np.random.default_rng(0).random((2,) + model.input_shape[1:], dtype=np.float32))
    assert keras.backend.standardize_dtype(output.dtype) == "float32"


def test_a_spec_refuses_presets_and_quick_budgets_its_model_cannot_take():
    scratch_spec = model_registry.get("scratch")
    with pytest.raises(TypeError, match="preset 'book' is a MnistHParams, not its ScratchHParams"):
        dataclasses.replace(scratch_spec, presets={"book": MnistHParams()})
    with pytest.raises(ValueError, match=r"unknown ScratchHParams hyper-parameters \['epoch'\]"):
        dataclasses.replace(scratch_spec, quick_hparams={"epoch": 2})
    assert scratch_spec.run_fn == "components.models.scratch.trainer.run_fn"
    assert dataclasses.replace(scratch_spec, package="elsewhere.tiny").run_fn == "elsewhere.tiny.trainer.run_fn"
