"""What every Trainer (each model's run_fn) shares: reading fn_args, strategy, progress, report, export."""
import json
import os
import time
from typing import Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_transform as tft
from absl import logging

from components import contract
from components.formats import examples
from components.image_shape import ImageShape
from components.training import data, plots
from components.training.augmentation import augment_images
from components.training.export import export_model
from components.training.hparams import AugmentationParams

AUGMENTED_SAMPLES = 11
"""Augmented copies shown next to the original in the augmentation grid (figure 5.11)."""
BEST_WEIGHTS_FILE = "best_val_accuracy.weights.h5"
"""In model_run: the weights of the best validation epoch so far (also mid-run)."""


def distribution_strategy() -> tf.distribute.Strategy:
    """MirroredStrategy across several GPUs; the default strategy otherwise (CPU, one GPU)."""
    gpus = tf.config.list_logical_devices("GPU")
    if len(gpus) > 1:
        logging.info("Training on %d GPUs with MirroredStrategy", len(gpus))
        return tf.distribute.MirroredStrategy()
    return tf.distribute.get_strategy()


def examples_root(file_pattern) -> str:
    """Examples artifact root from a Trainer file pattern such as <root>/Split-train/*."""
    pattern = file_pattern[0] if isinstance(file_pattern, (list, tuple)) else file_pattern
    return os.path.dirname(os.path.dirname(pattern))


def load_class_names(file_pattern) -> List[str]:
    """The Examples artifact's class names; a classifier needs at least two."""
    class_names = examples.class_names(examples_root(file_pattern))
    if len(class_names) < 2:
        raise ValueError(f"{contract.CLASS_NAMES_FILE} of {examples_root(file_pattern)} must name at "
                         f"least two classes, got {class_names!r}")
    return class_names


class TrainingInputs:
    """The Trainer's data: tft output, raw feature spec and train/eval input specs."""

    def __init__(self, fn_args):
        self.tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
        self.transform = data.transform_from_output(self.tf_transform_output)
        self.raw_feature_spec = data.raw_feature_spec(self.tf_transform_output)
        self.train = data.InputSpec(fn_args.train_files, self.raw_feature_spec, self.transform)
        self.eval = data.InputSpec(fn_args.eval_files, self.raw_feature_spec, self.transform)
        self.class_names = load_class_names(fn_args.train_files)
        self.image_shape = transformed_image_shape(self.tf_transform_output)

    @property
    def n_classes(self) -> int:
        return len(self.class_names)


def transformed_image_shape(tf_transform_output) -> ImageShape:
    """[height, width, channels] of Transform's image output (from its transformed schema)."""
    spec = tf_transform_output.transformed_feature_spec().get(contract.TRANSFORMED_IMAGE_KEY)
    if spec is None or len(spec.shape) != 3:
        raise ValueError(f"Transform's output lacks a [height, width, channels] feature "
                         f"{contract.TRANSFORMED_IMAGE_KEY!r}; found {spec}")
    return ImageShape.of(spec.shape)


class ProgressLogger(keras.callbacks.Callback):
    """One log line per epoch (and every few batches of long predictions)."""

    def __init__(self, phase: str, total_epochs: int, log_every_batches: int = 20):
        super().__init__()
        self.phase, self.total_epochs, self.log_every = phase, total_epochs, log_every_batches
        self._started = time.time()

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.time()

    def on_epoch_end(self, epoch, logs=None):
        metrics = " ".join(f"{k}={v:.4f}" for k, v in sorted((logs or {}).items())
                           if isinstance(v, (int, float, np.floating)))
        logging.info("[%s] epoch %d/%d (%.0f s): %s", self.phase, epoch + 1, self.total_epochs,
                     time.time() - self._started, metrics)

    def on_predict_batch_end(self, batch, logs=None):
        if (batch + 1) % self.log_every == 0:
            logging.info("[%s] %d batches (%.0f s)", self.phase, batch + 1, time.time() - self._started)


class TimeBudget(keras.callbacks.Callback):
    """Stops training after the epoch in which the wall-time budget runs out.

    The clock starts when training starts, or at `started` (time.time()) for a
    budget shared by several fit() calls, as VGG16's two phases share one.
    """

    def __init__(self, minutes: Optional[float], started: Optional[float] = None):
        super().__init__()
        self.seconds = None if minutes is None else minutes * 60.0
        self._shared_start = started
        self._started = time.time() if started is None else started

    def on_train_begin(self, logs=None):
        if self._shared_start is None:
            self._started = time.time()

    @property
    def exhausted(self) -> bool:
        return self.seconds is not None and time.time() - self._started > self.seconds

    def on_epoch_end(self, epoch, logs=None):
        if self.exhausted:
            logging.info("Time budget of %.0f s used after %d epochs: stopping", self.seconds, epoch + 1)
            self.model.stop_training = True


TENSORBOARD_PHASE_CHARS = str.maketrans({" ": "_", "(": None, ")": None, "@": "_"})


def tensorboard(model_run_dir: str, phase: Optional[str] = None) -> keras.callbacks.TensorBoard:
    """TensorBoard event files in the model_run artifact (TFX's convention): `train/` and
    `validation/` runs there, or under a folder per phase for models trained in phases."""
    log_dir = model_run_dir if phase is None else os.path.join(
        model_run_dir, phase.translate(TENSORBOARD_PHASE_CHARS))
    return keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)


def best_weights_path(model_run_dir: str) -> str:
    return os.path.join(model_run_dir, BEST_WEIGHTS_FILE)


def keep_best_weights(model_run_dir: str) -> keras.callbacks.ModelCheckpoint:
    """Saves the weights of each epoch that beats the best validation accuracy so far."""
    tf.io.gfile.makedirs(model_run_dir)
    return keras.callbacks.ModelCheckpoint(best_weights_path(model_run_dir), monitor="val_accuracy",
                                           mode="max", save_best_only=True, save_weights_only=True)


def restore_best_weights(model: keras.Model, model_run_dir: str, history: Dict[str, List[float]]) -> Optional[int]:
    """Loads what keep_best_weights saved; returns that epoch (1-based), None if nothing was saved."""
    path = best_weights_path(model_run_dir)
    val_accuracy = history.get("val_accuracy")
    if not val_accuracy or not tf.io.gfile.exists(path):
        logging.warning("No best-validation weights at %s: exporting the last epoch's", path)
        return None
    model.load_weights(path)
    best_epoch = int(np.argmax(val_accuracy)) + 1
    logging.info("Restored the weights of epoch %d (val_accuracy %.4f; last epoch %.4f)",
                 best_epoch, val_accuracy[best_epoch - 1], val_accuracy[-1])
    return best_epoch


def rmsprop(learning_rate, weight_decay: Optional[float] = None,
            ema_momentum: Optional[float] = None) -> keras.optimizers.RMSprop:
    """RMSprop (learning_rate: a float or a keras LearningRateSchedule); weight_decay: Keras'
    decoupled decay (None: none); ema_momentum: keep an exponential moving average of the
    weights, per step (None: none; averaged_weights() puts it in the model at each epoch's end)."""
    averaging = {} if ema_momentum is None else {"use_ema": True, "ema_momentum": ema_momentum}
    return keras.optimizers.RMSprop(learning_rate=learning_rate, weight_decay=weight_decay, **averaging)


def averaged_weights() -> keras.callbacks.SwapEMAWeights:
    """With an optimizer that averages the weights (rmsprop(ema_momentum=...)): validation sees
    the average, and from each epoch's end to the next epoch's start the model holds it, so the
    callbacks after this one (best-weights checkpoint, training backup) save it; the optimizer's
    average slots hold the raw weights meanwhile. Goes before keep_best_weights."""
    return keras.callbacks.SwapEMAWeights(swap_on_epoch=True)


def compile_binary(model: keras.Model, learning_rate, label_smoothing: float = 0.0,
                   weight_decay: Optional[float] = None, ema_momentum: Optional[float] = None):
    model.compile(optimizer=rmsprop(learning_rate, weight_decay, ema_momentum),
                  loss=keras.losses.BinaryCrossentropy(label_smoothing=label_smoothing),
                  metrics=[keras.metrics.BinaryAccuracy(name="accuracy")])


def compile_classifier(model: keras.Model, learning_rate, n_classes: int, label_smoothing: float = 0.0,
                       weight_decay: Optional[float] = None, ema_momentum: Optional[float] = None):
    """rmsprop(); binary cross-entropy on a sigmoid head (two classes), sparse categorical
    cross-entropy on a softmax head (more; labels stay class indices, so no label smoothing)."""
    if n_classes == 2:
        compile_binary(model, learning_rate, label_smoothing, weight_decay, ema_momentum)
        return
    if label_smoothing:
        raise ValueError(f"label_smoothing is implemented for two classes only, got {n_classes}")
    model.compile(optimizer=rmsprop(learning_rate, weight_decay, ema_momentum),
                  loss="sparse_categorical_crossentropy",
                  metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")])


def concat_histories(*histories: Dict[str, List[float]]) -> Dict[str, List[float]]:
    merged: Dict[str, List[float]] = {}
    for history in histories:
        for key, values in history.items():
            merged.setdefault(key, []).extend(values)
    return merged


def write_training_report(model_run_dir: str, title: str, history: Dict[str, List[float]],
                          hparams: Dict, phase_starts: Optional[Dict[str, int]] = None,
                          smoothed: bool = False, augmentation: Optional[AugmentationParams] = None,
                          sample_image: Optional[np.ndarray] = None, kept_epoch: Optional[int] = None,
                          resumes: Sequence[Dict] = ()) -> str:
    """history.json, curves.png and (with augmentation) augmentation.png in the model_run artifact.
    `kept_epoch`: the epoch whose weights are exported (None: the last); `resumes`: where
    training went on after a kill, and what it restored (components.training.resume)."""
    report_dir = os.path.join(model_run_dir, contract.TRAINING_REPORT_DIR)
    tf.io.gfile.makedirs(report_dir)
    with tf.io.gfile.GFile(os.path.join(report_dir, contract.TRAINING_HISTORY_FILE), "w") as f:
        json.dump({"history": history, "phase_starts": phase_starts or {},
                   "hparams": hparams, "kept_epoch": kept_epoch, "resumes": list(resumes)}, f, indent=1)
    if any(history.values()):
        plots.plot_curves(history, os.path.join(report_dir, "curves.png"), title,
                          smoothed=smoothed, phase_starts=phase_starts)
    if augmentation is not None and sample_image is not None:
        copies = tf.repeat(sample_image[None], AUGMENTED_SAMPLES, axis=0)
        grid = np.concatenate([sample_image[None], augment_images(copies, augmentation).numpy()])
        plots.plot_image_grid(grid, os.path.join(report_dir, "augmentation.png"),
                              f"{title}: original (top left) and augmented samples")
    logging.info("Training report written to %s", report_dir)
    return report_dir


def first_image(spec: data.InputSpec) -> np.ndarray:
    image, _ = next(iter(data.decoded_dataset(spec).take(1)))
    return image.numpy()


def export(model: keras.Model, inputs: TrainingInputs, serving_model_dir: str) -> str:
    path = export_model(model, inputs.transform.tft_layer, inputs.raw_feature_spec,
                        inputs.class_names, serving_model_dir)
    logging.info("Exported SavedModel (signatures %s, %s) to %s", contract.SERVING_SIGNATURE,
                 contract.EXAMPLES_SIGNATURE, path)
    return path


def seed_everything(seed: Optional[int]):
    if seed is not None:
        keras.utils.set_random_seed(seed)
