"""Input pipeline and training speed of the scratch Trainer, side by side.

1. Images/s delivered by the Trainer's input_fn with listing 5.14's full
   augmentation vs the book's way, tf_keras ImageDataGenerator.flow_from_directory
   with the same augmentation, on the full training split.
2. Images/s of model.fit on the scratch convnet fed by the input_fn (with and
   without augmentation) vs model.fit on in-memory tensors.

    nice -n 10 .venv/bin/python -m benchmarks.training_throughput
"""
import argparse
import json
import math
import os
import shutil
import statistics
import time

import numpy as np
import tensorflow as tf

from components import contract
from components.training import common, data
from components.training.hparams import LISTING_5_14
from components.training.models import build_scratch_model
from pipeline import trainer_inputs

DEFAULT_DATA_DIR = "/work/shared/data/cats_and_dogs_small"
BATCH_SIZE = 32


def images_per_second(batches, n_batches: int) -> float:
    """Pulls n_batches from an iterator; images per wall second."""
    started, images = time.perf_counter(), 0
    for _ in range(n_batches):
        images += int(next(batches)[0].shape[0])
    return images / (time.perf_counter() - started)


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
    parser.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    parser.add_argument("--work-dir", default="/tmp/bench_training_throughput")
    parser.add_argument("--input-batches", type=int, default=62, help="batches per input measurement")
    parser.add_argument("--train-steps", type=int, default=None,
                        help="batches per timed training epoch (default: one pass over the training split)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--results-dir", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    shutil.rmtree(args.work_dir, ignore_errors=True)
    examples = trainer_inputs.write_examples(args.data_dir, os.path.join(args.work_dir, "examples"),
                                               splits=(contract.TRAIN_SPLIT, contract.EVAL_SPLIT))
    first = next(iter(trainer_inputs.image_files(args.data_dir, contract.TRAIN_SPLIT, 1).values()))[0]
    transform = trainer_inputs.build_transform_graph(first, os.path.join(args.work_dir, "transform"))
    inputs = common.TrainingInputs(trainer_inputs.fn_args(examples, transform, args.work_dir, {}))

    # 1. Input pipeline: first pass (decode through Transform's graph + augment), then cached passes.
    pipeline = iter(data.input_fn(inputs.train, BATCH_SIZE, training=True, augmentation=LISTING_5_14,
                                  repeat=True))
    n_train = sum(1 for _ in data.decoded_dataset(inputs.train))
    first_pass = images_per_second(pipeline, math.ceil(n_train / BATCH_SIZE))
    book = image_data_generator_iterator(os.path.join(args.data_dir, contract.TRAIN_SPLIT))
    ours_runs, book_runs = [], []
    for _ in range(args.repeats):  # interleaved, so both see the same machine load
        ours_runs.append(images_per_second(pipeline, args.input_batches))
        book_runs.append(images_per_second(book, args.input_batches))
    input_result = {
        "input_fn_first_pass_images_per_s": round(first_pass, 1),
        "input_fn_images_per_s": [round(v, 1) for v in ours_runs],
        "image_data_generator_images_per_s": [round(v, 1) for v in book_runs],
        "speedup_median": round(statistics.median(ours_runs) / statistics.median(book_runs), 2),
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
