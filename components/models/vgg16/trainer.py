"""TFX Trainer module: VGG16 transfer learning (listings 5.16-5.23).
Entry point: run_fn.

Phase 1, feature extraction with the conv base frozen, either end to end on
augmented images (listing 5.21) or "fast" (listings 5.17/5.18: the base runs
once, the classifier trains on its cached features). Phase 2, fine-tuning:
block 5 unfrozen (listing 5.22), end to end with augmentation, or on cached
activations of the frozen layers (fine_tune_augment=False). Whatever the route,
the exported model is the whole network and serves raw image bytes.
"""
import math
import time
from typing import Optional, Tuple

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from components.training import common, data, precision
from components.training.augmentation import augment_images
from components.training.hparams import AugmentationParams
from components.training.resume import TrainingBackup

from . import SPEC
from .hparams import FEATURE_EXTRACTION_FAST, Vgg16HParams
from .network import Vgg16Parts

LAST_BASE_LAYER = "block5_pool"
PREDICT_BATCH = 20
LOG_EVERY_BATCHES = 50
"""A progress line per this many batches while features are cached (50 x 20 images)."""


def cached_features(model, spec: data.InputSpec, phase: str, copies: int = 0,
                    augmentation: Optional[AugmentationParams] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Runs `model` once over a split: (features, labels). copies=0: over the images as they
    are (float32); copies=K: over K augmented copies of every image, one pass after another,
    kept in float16 (at 224x224, block4_pool's activations take 401 kB per copy in float32)."""
    decoded = data.decoded_dataset(spec)
    images, passes = int(decoded.cardinality()), max(copies, 1)
    dataset = decoded.cache().repeat(passes).batch(PREDICT_BATCH)
    if copies:
        dataset = dataset.map(lambda x, y: (augment_images(x, augmentation), y), num_parallel_calls=data.AUTOTUNE)
    total = images * passes
    features = np.empty((total,) + tuple(model.output.shape[1:]), np.float16 if copies else np.float32)
    labels = np.empty(total, np.float32)
    what = f"{copies} augmented copies of {images} images" if copies else f"{images} images"
    logging.info("[%s] computing %s over %s", phase, model.name, what)
    started, done = time.time(), 0
    for batch, (x, y) in enumerate(dataset.prefetch(data.AUTOTUNE)):
        n = int(y.shape[0])
        features[done:done + n] = model.predict_on_batch(x)
        labels[done:done + n] = y.numpy()
        done += n
        if (batch + 1) % LOG_EVERY_BATCHES == 0 or done == total:
            rate = done / max(time.time() - started, 1e-9)
            logging.info("[%s] %d/%d images (%.1f/s, %.0f s left)", phase, done, total, rate, (total - done) / rate)
    return features, labels


def features_dataset(features: np.ndarray, labels: np.ndarray, batch_size: int,
                     shuffle: bool, seed=None) -> tf.data.Dataset:
    """Batches of cached features: in order, or (shuffle) an endless stream of batches from
    successive random permutations, read from the arrays in Python (a tensor of the whole
    cache could pass GraphDef's 2 GB limit once it holds augmented copies)."""
    if not shuffle:
        return tf.data.Dataset.from_tensor_slices((features, labels)).batch(batch_size).prefetch(data.AUTOTUNE)
    rng = np.random.default_rng(seed)

    def batches():
        while True:
            order = rng.permutation(len(labels))
            for start in range(0, len(order), batch_size):
                rows = np.sort(order[start:start + batch_size])  # sorted: faster reads
                yield features[rows].astype(np.float32), labels[rows]

    signature = (tf.TensorSpec((None,) + features.shape[1:], tf.float32), tf.TensorSpec((None,), tf.float32))
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(data.AUTOTUNE)


class FeatureCache:
    """Frozen-layer outputs for train and eval, computed once and reused by both phases;
    `images`: how many training images they come from (each may have several copies)."""

    def __init__(self, parts: Vgg16Parts, inputs: common.TrainingInputs, cut: str, copies: int = 0,
                 augmentation: Optional[AugmentationParams] = None):
        trunk, _ = parts.split_at(cut)
        self.cut = cut
        self.train = cached_features(trunk, inputs.train, f"features@{cut} train", copies, augmentation)
        self.images = len(self.train[1]) // max(copies, 1)
        self.eval = cached_features(trunk, inputs.eval, f"features@{cut} eval")

    def at(self, parts: Vgg16Parts, layer_name: str):
        """Features at a later layer, from the cached ones (no second pass through the trunk)."""
        if layer_name == self.cut:
            return self.train, self.eval
        between = parts.segment(self.cut, layer_name)

        def through(x):  # in slices: predict() on the whole array would copy it into one tensor
            return np.concatenate([between.predict_on_batch(x[start:start + PREDICT_BATCH].astype(np.float32))
                                   for start in range(0, len(x), PREDICT_BATCH)]).astype(x.dtype)
        return tuple((through(x), y) for x, y in (self.train, self.eval))


def callbacks(phase: str, epochs: int, model_run_dir: str, budget: common.TimeBudget,
              backup_callback: keras.callbacks.Callback):
    return [common.ProgressLogger(phase, epochs), common.tensorboard(model_run_dir, phase), budget, backup_callback]


def fit_on_features(top, train, evaluation, hp: Vgg16HParams, epochs: int, phase: str,
                    model_run_dir: str, budget: common.TimeBudget, initial_epoch: int,
                    backup_callback: keras.callbacks.Callback, images: int):
    """An epoch is as many cached rows as there are training `images` (with augmented copies
    cached, a random draw among them)."""
    return top.fit(features_dataset(*train, hp.batch_size, shuffle=True, seed=hp.seed),
                   epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=math.ceil(images / hp.batch_size),
                   validation_data=features_dataset(*evaluation, hp.batch_size, shuffle=False),
                   callbacks=callbacks(phase, epochs, model_run_dir, budget, backup_callback), verbose=0)


def fit_end_to_end(parts: Vgg16Parts, inputs, hp: Vgg16HParams, epochs: int, phase: str, model_run_dir: str,
                   budget: common.TimeBudget, initial_epoch: int, backup_callback: keras.callbacks.Callback):
    repeat = hp.steps_per_epoch is not None
    train_ds = data.input_fn(inputs.train, hp.batch_size, training=True,
                             augmentation=hp.augmentation, shuffle_buffer=hp.shuffle_buffer,
                             repeat=repeat, seed=hp.seed)
    eval_ds = data.input_fn(inputs.eval, hp.batch_size, training=False)
    return parts.model.fit(train_ds, epochs=epochs, initial_epoch=initial_epoch, steps_per_epoch=hp.steps_per_epoch,
                           validation_data=eval_ds, validation_steps=hp.validation_steps,
                           callbacks=callbacks(phase, epochs, model_run_dir, budget, backup_callback), verbose=0)


def train(hp: Vgg16HParams, inputs: common.TrainingInputs, model_run_dir: str, backup: TrainingBackup):
    """Both phases, from where `backup` says a killed run stopped; returns (parts, merged
    history, phase start epochs)."""
    common.seed_everything(hp.seed)
    budget = common.TimeBudget(hp.time_budget_minutes, started=backup.clock_start)
    n_classes = inputs.n_classes
    fast = hp.feature_extraction == FEATURE_EXTRACTION_FAST
    with common.distribution_strategy().scope(), precision.policy_scope(hp.precision):
        parts = Vgg16Parts(hp.weights, hp.dense_units, hp.head_dropout, n_classes, SPEC.image_shape,
                           inputs.image_shape, hp.head_pooling)
        # The frozen layers as the killed run had them, before their outputs are cached.
        backup.restore_weights(parts.model)
        cache = None
        if fast or (hp.fine_tune_epochs and not hp.fine_tune_augment):
            cut = LAST_BASE_LAYER if not hp.fine_tune_epochs or hp.fine_tune_augment else \
                parts.fine_tune_cut(hp.fine_tune_from)
            parts.freeze_base()
            cache = FeatureCache(parts, inputs, cut, hp.cached_augmented_copies, hp.augmentation)

        histories, phase_starts = [], {}
        if hp.feature_extraction_epochs:
            phase = "feature extraction" + (" (fast)" if fast else "")
            phase_starts[phase] = 1
            parts.freeze_base()
            logging.info("[%s] %d trainable weight tensors", phase, len(parts.model.trainable_weights))
            progress = backup.phase(phase, hp.feature_extraction_epochs, parts.model)
            if fast:
                _, top = parts.split_at(LAST_BASE_LAYER)
                common.compile_classifier(top, hp.feature_extraction_learning_rate, n_classes)
                histories.append(progress.run(lambda initial_epoch, backup_callback: fit_on_features(
                    top, *cache.at(parts, LAST_BASE_LAYER), hp, hp.feature_extraction_epochs, phase, model_run_dir,
                    budget, initial_epoch, backup_callback, cache.images)))
            else:
                common.compile_classifier(parts.model, hp.feature_extraction_learning_rate, n_classes)
                histories.append(progress.run(lambda initial_epoch, backup_callback: fit_end_to_end(
                    parts, inputs, hp, hp.feature_extraction_epochs, phase, model_run_dir, budget,
                    initial_epoch, backup_callback)))

        if hp.fine_tune_epochs and budget.exhausted:
            logging.warning("Time budget of %.0f min used by feature extraction: fine-tuning skipped",
                            hp.time_budget_minutes)
        elif hp.fine_tune_epochs:
            phase = "fine-tuning" + ("" if hp.fine_tune_augment else " (cached frozen layers)")
            phase_starts[phase] = sum(len(h.get("loss", [])) for h in histories) + 1
            parts.unfreeze_from(hp.fine_tune_from)
            logging.info("[%s] %d trainable weight tensors", phase, len(parts.model.trainable_weights))
            progress = backup.phase(phase, hp.fine_tune_epochs, parts.model)
            if hp.fine_tune_augment:
                common.compile_classifier(parts.model, hp.fine_tune_learning_rate, n_classes)
                histories.append(progress.run(lambda initial_epoch, backup_callback: fit_end_to_end(
                    parts, inputs, hp, hp.fine_tune_epochs, phase, model_run_dir, budget,
                    initial_epoch, backup_callback)))
            else:
                _, top = parts.split_at(cache.cut)
                common.compile_classifier(top, hp.fine_tune_learning_rate, n_classes)
                histories.append(progress.run(lambda initial_epoch, backup_callback: fit_on_features(
                    top, cache.train, cache.eval, hp, hp.fine_tune_epochs, phase, model_run_dir, budget,
                    initial_epoch, backup_callback, cache.images)))
    return parts, common.concat_histories(*histories), phase_starts


def run_fn(fn_args):
    """TFX Trainer entry point."""
    hp = SPEC.hparams(fn_args.custom_config)
    inputs = common.TrainingInputs(fn_args)
    backup = TrainingBackup.for_run(fn_args, __name__, hp.as_custom_config())
    parts, history, phase_starts = train(hp, inputs, fn_args.model_run_dir, backup)
    augmented = hp.feature_extraction != FEATURE_EXTRACTION_FAST or (
        hp.fine_tune_epochs and hp.fine_tune_augment)
    common.write_training_report(
        fn_args.model_run_dir, SPEC.title, history, hp.as_custom_config(), phase_starts=phase_starts,
        smoothed=bool(hp.fine_tune_epochs),
        augmentation=hp.augmentation if augmented else None,
        sample_image=common.first_image(inputs.train) if augmented else None, resumes=backup.resumes)
    common.export(parts.model, inputs, fn_args.serving_model_dir)
    backup.finish()
