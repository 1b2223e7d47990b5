"""Input pipeline and training speed of the scratch Trainer, side by side.

1. Images/s delivered by the Trainer's input_fn with listing 5.14's full
   augmentation vs the book's way, tf_keras ImageDataGenerator.flow_from_directory
   with the same augmentation, on the full training split. Beside them: the same
   input_fn resampling with TensorFlow's ImageProjectiveTransformV3 op (what it
   used before the XLA warp), the input_fn without augmentation (cached, shuffled
   batches: the floor), and the resampling alone on one in-memory batch, both ways.
2. Images/s of model.fit on the scratch convnet fed by the input_fn (with and
   without augmentation) vs model.fit on in-memory tensors.

    nice -n 10 .venv/bin/python -m benchmarks.training_throughput
"""
import argparse
import contextlib
import json
import math
import os
import shutil
import statistics
import time

import numpy as np
import tensorflow as tf

from benchmarks import full_data, trainer_inputs
from components import contract
from components.models.scratch.network import build_scratch_model
from components.training import augmentation, common, data
from components.training.hparams import LISTING_5_14

BATCH_SIZE = 32


def images_per_second(batches, n_batches: int) -> float:
    """Pulls n_batches from an iterator; images per wall second."""
    started, images = time.perf_counter(), 0
    for _ in range(n_batches):
        images += int(next(batches)[0].shape[0])
    return images / (time.perf_counter() - started)


@tf.function
def image_projective_transform_v3(images, transforms):
    """The resampling the input_fn used before the XLA warp: TensorFlow's own op."""
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=tf.shape(images)[1:3], fill_value=0.0,
        interpolation="BILINEAR", fill_mode="NEAREST")


RESAMPLERS = {"xla_affine_warp": augmentation.compiled_affine_warp,
              "image_projective_transform_v3": image_projective_transform_v3}


@contextlib.contextmanager
def resampling_by(warp):
    """augment_images resamples with `warp` in datasets built inside this block (their
    map functions are traced when built): the input_fn as it was, for comparison."""
    kept = augmentation.compiled_affine_warp
    augmentation.compiled_affine_warp = warp
    try:
        yield
    finally:
        augmentation.compiled_affine_warp = kept


def resampling_images_per_second(images: tf.Tensor, n_batches: int) -> dict:
    """The augmentation's resampling alone, on one batch held in memory, both ways."""
    transforms = augmentation.random_affine_transforms(images.shape[0], images.shape[1], images.shape[2],
                                                       LISTING_5_14, seed=0)
    rates = {}
    for name, warp in RESAMPLERS.items():
        warp(images, transforms).numpy()  # traces (and compiles)
        started = time.perf_counter()
        for _ in range(n_batches):
            warp(images, transforms).numpy()
        rates[name] = round(n_batches * int(images.shape[0]) / (time.perf_counter() - started), 1)
    return rates


def image_data_generator_iterator(train_dir: str):
    """Listing 5.14 exactly, with tf_keras (Keras 2). Its shear_range is in degrees,
    the book's Keras 2.0 read radians: the same 0.2 rad is passed as degrees."""
    from tf_keras.preprocessing.image import ImageDataGenerator  # pylint: disable=import-outside-toplevel
    generator = ImageDataGenerator(
        rescale=1.0 / 255, rotation_range=LISTING_5_14.rotation_range,
        width_shift_range=LISTING_5_14.width_shift_range,
        height_shift_range=LISTING_5_14.height_shift_range,
        shear_range=math.degrees(LISTING_5_14.shear_range), zoom_range=LISTING_5_14.zoom_range,
        horizontal_flip=LISTING_5_14.horizontal_flip, fill_mode="nearest")
    return generator.flow_from_directory(train_dir, target_size=(contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH),
                                         batch_size=BATCH_SIZE, class_mode="binary")


def fit_images_per_second(model, fit_kwargs, steps: int) -> float:
    """Second of two epochs of `steps` batches. The first traces, warms up and, for
    the input_fn feeds, fills tf.data's cache: the cache only counts once a full
    pass has been read, so `steps` must cover the training split (a shorter epoch
    would time JPEG decoding, which the Trainer does once, not every epoch)."""
    times = []

    class EpochTimer(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    model.fit(epochs=2, steps_per_epoch=steps, verbose=0, callbacks=[EpochTimer()], **fit_kwargs)
    return steps * BATCH_SIZE / times[-1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full_data.add_argument(parser)
    parser.add_argument("--work-dir", default="/tmp/bench_training_throughput")
    parser.add_argument("--input-batches", type=int, default=62, help="batches per input measurement")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="batches per timed training epoch (default: one pass over the training split)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results-dir", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    args.data_dir = full_data.require(args.data_dir, "training_throughput")
    shutil.rmtree(args.work_dir, ignore_errors=True)
    examples = trainer_inputs.write_examples(args.data_dir, os.path.join(args.work_dir, "examples"),
                                               splits=(contract.TRAIN_SPLIT, contract.EVAL_SPLIT))
    first = next(iter(trainer_inputs.image_files(args.data_dir, contract.TRAIN_SPLIT, 1).values()))[0]
    transform = trainer_inputs.build_transform_graph(first, os.path.join(args.work_dir, "transform"))
    inputs = common.TrainingInputs(trainer_inputs.fn_args(examples, transform, args.work_dir, {}))

    # 1. Input pipeline. Each tf.data feed first reads one pass (decoding through Transform's
    # graph, filling its cache); each timed measurement then discards one more pass first, so
    # that batches its prefetch buffer filled while another feed was timed are not counted.
    n_train = sum(1 for _ in data.decoded_dataset(inputs.train))
    pass_batches = math.ceil(n_train / BATCH_SIZE)

    def augmented_input_fn():
        return iter(data.input_fn(inputs.train, BATCH_SIZE, training=True, augmentation=LISTING_5_14, repeat=True))

    feeds = {"input_fn": augmented_input_fn()}
    first_pass = images_per_second(feeds["input_fn"], pass_batches)
    with resampling_by(image_projective_transform_v3):
        feeds["input_fn_with_image_projective_transform_v3"] = augmented_input_fn()
    feeds["input_fn_no_augmentation"] = iter(data.input_fn(inputs.train, BATCH_SIZE, training=True,
                                                           augmentation=None, repeat=True))
    for name in list(feeds)[1:]:
        images_per_second(feeds[name], pass_batches)
    one_batch = next(iter(data.decoded_dataset(inputs.train).batch(BATCH_SIZE)))[0]
    book = image_data_generator_iterator(os.path.join(args.data_dir, contract.TRAIN_SPLIT))
    runs = {name: [] for name in (*feeds, "image_data_generator")}
    resampling_runs = []
    for _ in range(args.repeats):  # interleaved, so all see the same machine load
        for name, batches in feeds.items():
            images_per_second(batches, pass_batches)
            runs[name].append(images_per_second(batches, args.input_batches))
        runs["image_data_generator"].append(images_per_second(book, args.input_batches))
        resampling_runs.append(resampling_images_per_second(one_batch, args.input_batches))
    book_median = statistics.median(runs["image_data_generator"])
    input_result = {
        "input_fn_first_pass_images_per_s": round(first_pass, 1),
        **{f"{name}_images_per_s": [round(v, 1) for v in values] for name, values in runs.items()},
        "speedup_median": round(statistics.median(runs["input_fn"]) / book_median, 2),
        "speedup_median_with_image_projective_transform_v3": round(
            statistics.median(runs["input_fn_with_image_projective_transform_v3"]) / book_median, 2),
        **{f"resampling_only_{name}_images_per_s": [run[name] for run in resampling_runs]
           for name in RESAMPLERS},
    }
    print(json.dumps(input_result, indent=1), flush=True)

    # 2. Training speed: the same model fed three ways.
    train_steps = args.train_steps or math.ceil(n_train / BATCH_SIZE)
    images, labels = [], []
    for x, y in data.decoded_dataset(inputs.train).batch(256):
        images.append(x.numpy())
        labels.append(y.numpy())
    x_train, y_train = np.concatenate(images), np.concatenate(labels)
    feeds = {
        "in_memory_tensors": {"x": x_train, "y": y_train, "batch_size": BATCH_SIZE},
        "input_fn_augmented": {"x": data.input_fn(inputs.train, BATCH_SIZE, training=True,
                                                  augmentation=LISTING_5_14, repeat=True)},
        "input_fn_no_augmentation": {"x": data.input_fn(inputs.train, BATCH_SIZE, training=True,
                                                        augmentation=None, repeat=True)},
    }
    train_runs = {name: [] for name in feeds}
    for _ in range(args.repeats):
        for name, kwargs in feeds.items():
            model = build_scratch_model()
            common.compile_binary(model, 1e-4)
            train_runs[name].append(fit_images_per_second(model, kwargs, train_steps))
            print(name, round(train_runs[name][-1], 1), flush=True)
    reference = statistics.median(train_runs["in_memory_tensors"])
    train_result = {
        f"{name}_images_per_s": [round(v, 1) for v in runs] for name, runs in train_runs.items()}
    train_result.update({
        f"{name}_vs_in_memory": round(statistics.median(runs) / reference, 3)
        for name, runs in train_runs.items() if name != "in_memory_tensors"})
    result = {"input_pipeline": input_result, "training": train_result,
              "batch_size": BATCH_SIZE, "input_batches": args.input_batches,
              "train_steps": train_steps, "repeats": args.repeats, "cpus": os.cpu_count()}
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "throughput_training.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
