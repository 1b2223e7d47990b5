"""Tiny real Trainer runs on data/sample: run_fn -> exported SavedModel that serves
JPEG bytes, and the served model agrees with the training input for the same file."""
import glob
import json
import os
import warnings

import keras
import numpy as np
import pytest
import tensorflow as tf

from benchmarks import trainer_inputs
from components import contract
from components.models.scratch import trainer as scratch
from components.models.scratch.network import build_scratch_model
from components.models.vgg16 import trainer as vgg16
from components.models.vgg16.hparams import WEIGHTS_NONE
from components.models.vgg16.network import Vgg16Parts
from components.training import common, data
from components.training.hparams import LISTING_5_21
from tests.examples_artifacts import TRAINING_IMAGES_PER_CLASS as IMAGES_PER_CLASS
from tests.image_files import SAMPLE_DIR as SAMPLE


@pytest.fixture(scope="module")
def scratch_run(pipeline_inputs, tmp_path_factory):
    examples, transform = pipeline_inputs
    fn_args = trainer_inputs.fn_args(examples, transform, str(tmp_path_factory.mktemp("scratch")),
                                       {"epochs": 2, "steps_per_epoch": 2, "batch_size": 4, "seed": 1,
                                        "precision": "float32"})
    scratch.run_fn(fn_args)
    return fn_args


@pytest.fixture(scope="module")
def bfloat16_scratch_run(pipeline_inputs, tmp_path_factory):
    """bfloat16 computes on every x86-64 CPU (natively with AMX/AVX512-BF16, emulated otherwise)."""
    examples, transform = pipeline_inputs
    fn_args = trainer_inputs.fn_args(examples, transform, str(tmp_path_factory.mktemp("scratch_bf16")),
                                       {"epochs": 1, "steps_per_epoch": 1, "batch_size": 4, "seed": 1,
                                        "precision": "mixed_bfloat16"})
    scratch.run_fn(fn_args)
    return fn_args


def _event_tags(log_dir: str) -> set:
    """Scalar tags in a TensorBoard run folder's event files."""
    files = glob.glob(os.path.join(log_dir, "events.out.tfevents.*"))
    assert files, f"no TensorBoard event files in {log_dir}"
    tags = set()
    for record in tf.data.TFRecordDataset(files).as_numpy_iterator():
        tags.update(value.tag for value in tf.compat.v1.Event.FromString(record).summary.value)
    return tags


def _jpegs(split=contract.TEST_SPLIT, n=4):
    files = sorted(glob.glob(os.path.join(SAMPLE, split, "*", "*.jpg")))
    return [files[0], files[-1]] + files[1:n - 1]


def test_run_fn_writes_report_and_pictures(scratch_run):
    report = os.path.join(scratch_run.model_run_dir, contract.TRAINING_REPORT_DIR)
    with open(os.path.join(report, "history.json")) as f:
        history = json.load(f)["history"]
    assert len(history["loss"]) == 2 and len(history["val_accuracy"]) == 2
    for picture in ("curves.png", "augmentation.png"):
        with open(os.path.join(report, picture), "rb") as f:
            assert f.read(4) == b"\x89PNG"


def test_tensorboard_logs_are_in_the_model_run_artifact(scratch_run):
    for run in ("train", "validation"):
        assert {"epoch_loss", "epoch_accuracy"} <= _event_tags(os.path.join(scratch_run.model_run_dir, run))


def test_best_validation_epoch_is_the_exported_one(scratch_run):
    with open(os.path.join(scratch_run.model_run_dir, contract.TRAINING_REPORT_DIR, "history.json")) as f:
        report = json.load(f)
    val_accuracy = report["history"]["val_accuracy"]
    assert report["kept_epoch"] == int(np.argmax(val_accuracy)) + 1
    best = build_scratch_model()
    best.load_weights(common.best_weights_path(scratch_run.model_run_dir))
    exported = keras.models.load_model(os.path.join(scratch_run.serving_model_dir, contract.KERAS_MODEL_PATH))
    for saved, served in zip(best.get_weights(), exported.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, served)


def _signature_contract(signature):
    """What a client of a signature depends on: input and output names, dtypes and shapes."""
    inputs = {name: (spec.dtype, spec.shape.as_list())
              for name, spec in signature.structured_input_signature[1].items()}
    outputs = {name: (spec.dtype, spec.shape.as_list()) for name, spec in signature.structured_outputs.items()}
    return inputs, outputs


def test_mixed_bfloat16_model_serves_the_same_float32_contract(scratch_run, bfloat16_scratch_run):
    float32_model = tf.saved_model.load(scratch_run.serving_model_dir)
    bfloat16_model = tf.saved_model.load(bfloat16_scratch_run.serving_model_dir)
    for name in (contract.SERVING_SIGNATURE, contract.EXAMPLES_SIGNATURE):
        assert _signature_contract(bfloat16_model.signatures[name]) == \
            _signature_contract(float32_model.signatures[name])
    files = _jpegs()
    outputs = bfloat16_model.signatures[contract.SERVING_SIGNATURE](
        **{contract.SERVING_INPUT_KEY: tf.constant([open(f, "rb").read() for f in files])})
    probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
    assert probabilities.dtype == np.float32 and probabilities.shape == (len(files), 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    keras_model = keras.models.load_model(
        os.path.join(bfloat16_scratch_run.serving_model_dir, contract.KERAS_MODEL_PATH))
    assert keras_model.get_layer("conv2d_1").compute_dtype == "bfloat16"
    assert keras_model.get_layer("predictions").compute_dtype == "float32"


def test_serving_default_on_real_jpeg_bytes(scratch_run):
    served = tf.saved_model.load(scratch_run.serving_model_dir)
    signature = served.signatures[contract.SERVING_SIGNATURE]
    files = _jpegs()
    outputs = signature(**{contract.SERVING_INPUT_KEY: tf.constant([open(f, "rb").read() for f in files])})
    probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
    assert probabilities.shape == (len(files), 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    class_ids = outputs[contract.CLASS_IDS_KEY].numpy()
    np.testing.assert_array_equal(class_ids, probabilities.argmax(axis=1))
    expected_names = [contract.CATS_VS_DOGS_CLASSES[i].encode() for i in class_ids]
    assert outputs[contract.CLASSES_KEY].numpy().tolist() == expected_names


def test_examples_signature_adds_positive_probability(scratch_run):
    served = tf.saved_model.load(scratch_run.serving_model_dir)
    assert contract.EXAMPLES_SIGNATURE != contract.SERVING_SIGNATURE
    serialized = [trainer_inputs.make_example(open(f, "rb").read(), 0, f).SerializeToString()
                  for f in _jpegs()]
    outputs = served.signatures[contract.EXAMPLES_SIGNATURE](
        **{contract.EXAMPLES_INPUT_KEY: tf.constant(serialized)})
    np.testing.assert_allclose(outputs[contract.POSITIVE_PROBABILITY_KEY].numpy(),
                               outputs[contract.PROBABILITIES_KEY].numpy()[:, 1])


def test_batch_with_an_undecodable_image_fails_clearly(scratch_run):
    served = tf.saved_model.load(scratch_run.serving_model_dir)
    signature = served.signatures[contract.SERVING_SIGNATURE]
    good = open(_jpegs()[0], "rb").read()
    with pytest.raises(tf.errors.InvalidArgumentError, match="neither JPEG nor PNG"):
        signature(**{contract.SERVING_INPUT_KEY: tf.constant([good, b"<html>not an image</html>"])})
    outputs = signature(**{contract.SERVING_INPUT_KEY: tf.constant([good])})  # still serving
    assert outputs[contract.CLASSES_KEY].shape == (1,)


def test_served_model_agrees_with_training_input_for_the_same_files(scratch_run):
    """No train/serve skew: bytes through the served graph == input_fn tensors through the model."""
    inputs = common.TrainingInputs(scratch_run)
    images, labels = next(iter(data.input_fn(inputs.eval, batch_size=64, training=False)))
    keras_model = keras.models.load_model(
        os.path.join(scratch_run.serving_model_dir, contract.KERAS_MODEL_PATH))
    from_training_input = keras_model.predict(images, verbose=0)[:, 0]

    examples = glob.glob(scratch_run.eval_files[0])
    serialized = list(tf.data.TFRecordDataset(examples, compression_type="GZIP").as_numpy_iterator())
    raw = tf.io.parse_example(serialized, {contract.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string)})
    served = tf.saved_model.load(scratch_run.serving_model_dir).signatures[contract.SERVING_SIGNATURE]
    from_bytes = served(**{contract.SERVING_INPUT_KEY: tf.reshape(raw[contract.IMAGE_KEY], [-1])})
    assert len(serialized) == len(labels) == 2 * IMAGES_PER_CLASS
    np.testing.assert_allclose(from_bytes[contract.PROBABILITIES_KEY].numpy()[:, 1],
                               from_training_input, rtol=1e-5, atol=1e-6)


def test_vgg16_fast_feature_extraction_and_cached_fine_tuning_export_an_image_model(
        pipeline_inputs, tmp_path):
    examples, transform = pipeline_inputs
    fn_args = trainer_inputs.fn_args(examples, transform, str(tmp_path), {
        "weights": WEIGHTS_NONE, "feature_extraction": "fast", "feature_extraction_epochs": 1,
        "fine_tune_epochs": 1, "fine_tune_augment": False, "cached_augmented_copies": 2, "batch_size": 4})
    vgg16.run_fn(fn_args)
    with open(os.path.join(fn_args.model_run_dir, contract.TRAINING_REPORT_DIR, "history.json")) as f:
        report = json.load(f)
    assert len(report["history"]["loss"]) == 2
    assert sorted(report["phase_starts"].values()) == [1, 2]
    served = tf.saved_model.load(fn_args.serving_model_dir).signatures[contract.SERVING_SIGNATURE]
    outputs = served(**{contract.SERVING_INPUT_KEY: tf.constant([open(_jpegs()[0], "rb").read()])})
    assert outputs[contract.PROBABILITIES_KEY].shape == (1, 2)
    keras_model = keras.models.load_model(os.path.join(fn_args.serving_model_dir, contract.KERAS_MODEL_PATH))
    assert keras_model.get_layer("vgg16").get_layer("block5_conv3") is not None
    # One TensorBoard run folder per phase.
    phase_logs = sorted(glob.glob(os.path.join(fn_args.model_run_dir, "*", "validation")))
    assert len(phase_logs) == 2 and all("epoch_loss" in _event_tags(log) for log in phase_logs)


def test_vgg16_caches_augmented_copies_of_every_training_image(pipeline_inputs, tmp_path):
    """cached_augmented_copies=K: K augmented passes over the training split through the frozen
    layers (copy after copy, float16), the validation split once as it is; an epoch on the
    cache draws as many rows as there are images."""
    examples, transform = pipeline_inputs
    inputs = common.TrainingInputs(trainer_inputs.fn_args(examples, transform, str(tmp_path), {}))
    keras.utils.set_random_seed(1)
    parts = Vgg16Parts(WEIGHTS_NONE)
    plain = vgg16.FeatureCache(parts, inputs, "block4_pool")
    copies = vgg16.FeatureCache(parts, inputs, "block4_pool", copies=3, augmentation=LISTING_5_21)
    (features, labels), (eval_features, eval_labels) = copies.train, copies.eval
    images = 2 * IMAGES_PER_CLASS
    assert plain.images == copies.images == images
    assert features.shape == (3 * images, 9, 9, 512) and features.dtype == np.float16
    np.testing.assert_array_equal(labels, np.tile(plain.train[1], 3))
    np.testing.assert_array_equal(eval_features, plain.eval[0])  # never augmented
    np.testing.assert_array_equal(eval_labels, plain.eval[1])
    first_image = features[[0, images, 2 * images]].astype(np.float32)
    assert not np.allclose(first_image[0], first_image[1]) and not np.allclose(first_image[1], first_image[2])
    assert not np.allclose(first_image[0], plain.train[0][0], rtol=1e-2, atol=1e-2)
    # The training stream goes on past one permutation and yields every row once per permutation.
    stream = vgg16.features_dataset(features, labels, batch_size=4, shuffle=True, seed=1)
    rows = np.concatenate([y.numpy() for _, y in stream.take(2 * int(np.ceil(3 * images / 4)))])
    assert len(rows) == 6 * images and rows[:3 * images].sum() == labels.sum()


def test_vgg16_time_budget_spans_both_phases(pipeline_inputs, tmp_path):
    """A budget already spent after the first epoch: feature extraction stops there and
    fine-tuning never starts; the model is still exported."""
    examples, transform = pipeline_inputs
    fn_args = trainer_inputs.fn_args(examples, transform, str(tmp_path), {
        "weights": WEIGHTS_NONE, "feature_extraction": "fast", "feature_extraction_epochs": 3,
        "fine_tune_epochs": 2, "fine_tune_augment": False, "batch_size": 4, "time_budget_minutes": 1e-6})
    vgg16.run_fn(fn_args)
    with open(os.path.join(fn_args.model_run_dir, contract.TRAINING_REPORT_DIR, "history.json")) as f:
        report = json.load(f)
    assert len(report["history"]["loss"]) == 1
    assert list(report["phase_starts"]) == ["feature extraction (fast)"]
    assert tf.saved_model.load(fn_args.serving_model_dir).signatures[contract.SERVING_SIGNATURE] is not None


def test_missing_class_names_file_is_reported(pipeline_inputs, tmp_path):
    with pytest.raises(FileNotFoundError, match="class_names.json"):
        common.load_class_names([str(tmp_path / "Split-train" / "*")])


def test_vgg16_book_route_trains_end_to_end_on_augmented_images(pipeline_inputs, tmp_path):
    """Listings 5.21/5.22: frozen base inside the model, then block 5 unfrozen, both augmented."""
    examples, transform = pipeline_inputs
    fn_args = trainer_inputs.fn_args(examples, transform, str(tmp_path), {
        "weights": WEIGHTS_NONE, "feature_extraction": "augmented", "feature_extraction_epochs": 1,
        "fine_tune_epochs": 1, "fine_tune_augment": True, "steps_per_epoch": 1, "batch_size": 2})
    vgg16.run_fn(fn_args)
    report_dir = os.path.join(fn_args.model_run_dir, contract.TRAINING_REPORT_DIR)
    with open(os.path.join(report_dir, "history.json")) as f:
        assert len(json.load(f)["history"]["val_accuracy"]) == 2
    assert os.path.exists(os.path.join(report_dir, "augmentation.png"))
    assert tf.saved_model.load(fn_args.serving_model_dir).signatures[contract.SERVING_SIGNATURE] is not None


class _BatchCounter(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.train_batches, self.test_batches = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self.train_batches.append(0)
        self.test_batches.append(0)

    def on_train_batch_end(self, batch, logs=None):
        self.train_batches[-1] += 1

    def on_test_batch_end(self, batch, logs=None):
        self.test_batches[-1] += 1


def test_a_fit_through_the_data_once_per_epoch_neither_warns_nor_cuts_an_epoch(pipeline_inputs, tmp_path):
    """The Trainers' fit with steps_per_epoch None (the full-data presets): input_fn
    without repeat, each epoch one whole pass, and no "ran out of data" warning."""
    examples, transform = pipeline_inputs
    inputs = common.TrainingInputs(trainer_inputs.fn_args(examples, transform, str(tmp_path), {}))
    batch_size = 5  # the last batch of each split is a partial one
    train = data.input_fn(inputs.train, batch_size, training=True, repeat=False, seed=1)
    evaluation = data.input_fn(inputs.eval, batch_size, training=False)
    model = keras.Sequential([keras.Input(inputs.image_shape.as_tuple), keras.layers.GlobalAveragePooling2D(),
                              keras.layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="sgd", loss="binary_crossentropy")
    counter = _BatchCounter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.fit(train, epochs=2, validation_data=evaluation, callbacks=[counter], verbose=0)
    assert [str(w.message) for w in caught if "ran out of data" in str(w.message)] == []
    examples_per_split = 2 * IMAGES_PER_CLASS
    assert counter.train_batches == [-(-examples_per_split // batch_size)] * 2
    assert counter.test_batches == [-(-examples_per_split // batch_size)] * 2
