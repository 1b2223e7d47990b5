"""float32 vs mixed bfloat16, side by side in one process: images/s of the VGG16
conv base's forward pass and of the scratch convnet's training steps, each
precision built with the Trainers' own code (components.training.precision).

Real images (the first training JPEGs, decoded and resized as Transform does)
held in memory, so that only the model is timed. Repeats interleave the two
precisions, so both see the same machine load.

    nice -n 10 .venv/bin/python -m benchmarks.training_precision

Writes benchmarks/results/precision_training.json. Training accuracy comes
from the full-data runs of benchmarks.training_accuracy; --scratch-weights
(a run's model_run/best_val_accuracy.weights.h5) adds the test accuracy of those
weights evaluated under each precision.
"""
import argparse
import glob
import json
import os
import statistics
import time

import numpy as np
import tensorflow as tf

from benchmarks import full_data
from components import contract
from components.models.scratch.network import build_scratch_model
from components.models.vgg16.hparams import WEIGHTS_OFFLINE
from components.models.vgg16.network import Vgg16Parts
from components.training import common, precision
from components.training.hparams import PRECISION_FLOAT32

PRECISIONS = (PRECISION_FLOAT32, precision.MIXED_BFLOAT16)
BATCH_SIZE = 32
VGG16_BATCH_SIZE = 20
SCRATCH_DEFAULT_WEIGHTS = os.path.join("/tmp", "bench_training_scratch_default", "trainer", "model_run",
                                       common.BEST_WEIGHTS_FILE)
"""What `benchmarks.training_accuracy` (run first by `make bench`) keeps of the default scratch run."""


def decode(paths) -> np.ndarray:
    images = [tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(path), channels=3),
                              (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH)) / 255.0 for path in paths]
    return np.stack([image.numpy() for image in images]).astype(np.float32)


def load_images(data_dir: str, n: int) -> np.ndarray:
    """[n, 150, 150, 3] float32 in [0, 1] from the training split's JPEGs (both classes)."""
    paths = sorted(glob.glob(os.path.join(data_dir, contract.TRAIN_SPLIT, "*", "*.jpg")))
    return decode(paths[:n // 2] + paths[-(n - n // 2):])


def test_accuracy_per_precision(weights_path: str, data_dir: str) -> dict:
    """The same trained scratch weights evaluated on the test split under each policy."""
    split_dir = os.path.join(data_dir, contract.TEST_SPLIT)
    class_names = sorted(os.listdir(split_dir))
    paths, labels = [], []
    for index, name in enumerate(class_names):
        found = sorted(glob.glob(os.path.join(split_dir, name, "*.jpg")))
        paths += found
        labels += [index] * len(found)
    images, labels = decode(paths), np.array(labels, np.float32)
    accuracies = {}
    for policy in PRECISIONS:
        with precision.policy_scope(policy):
            model = build_scratch_model(len(class_names))
            common.compile_binary(model, 1e-3)
        model.load_weights(weights_path)
        accuracies[policy] = round(float(model.evaluate(images, labels, batch_size=50, verbose=0)[1]), 4)
        print(f"test accuracy with {policy} inference: {accuracies[policy]}", flush=True)
    return {"weights": weights_path, "test_images": len(labels), "test_accuracy": accuracies}


def timed(function, repeats_inside: int) -> float:
    started = time.perf_counter()
    for _ in range(repeats_inside):
        function()
    return time.perf_counter() - started


def scratch_trainer(policy: str, images: np.ndarray, labels: np.ndarray):
    with precision.policy_scope(policy):
        model = build_scratch_model()
        common.compile_binary(model, 1e-3)
    batch = (tf.constant(images[:BATCH_SIZE]), tf.constant(labels[:BATCH_SIZE]))
    model.train_on_batch(*batch)  # traces
    return lambda: model.train_on_batch(*batch)


def vgg16_forward(policy: str, images: np.ndarray):
    with precision.policy_scope(policy):
        parts = Vgg16Parts(WEIGHTS_OFFLINE)
        trunk, _ = parts.split_at("block5_pool")
    batch = tf.constant(images[:VGG16_BATCH_SIZE])
    forward = tf.function(lambda x: trunk(x, training=False), jit_compile=False)
    forward(batch)  # traces
    return lambda: forward(batch).numpy()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    full_data.add_argument(parser)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--scratch-steps", type=int, default=10, help="training steps of 32 per timing")
    parser.add_argument("--vgg16-batches", type=int, default=5, help="forward batches of 20 per timing")
    parser.add_argument("--scratch-weights", default=SCRATCH_DEFAULT_WEIGHTS,
                        help="also evaluate these scratch convnet weights on the test split per precision, "
                             "if the file exists (default: %(default)s)")
    parser.add_argument("--results-dir", default=os.path.join("benchmarks", "results"))
    args = parser.parse_args(argv)
    args.data_dir = full_data.require(args.data_dir, "training_precision")
    images = load_images(args.data_dir, BATCH_SIZE)
    labels = np.array([0.0] * (BATCH_SIZE // 2) + [1.0] * (BATCH_SIZE - BATCH_SIZE // 2), np.float32)
    runners = {}
    for policy in PRECISIONS:
        runners[("scratch_train_step", policy)] = (scratch_trainer(policy, images, labels),
                                                   args.scratch_steps, BATCH_SIZE)
        runners[("vgg16_base_forward", policy)] = (vgg16_forward(policy, images),
                                                   args.vgg16_batches, VGG16_BATCH_SIZE)
    rates = {key: [] for key in runners}
    for repeat in range(args.repeats):
        for key, (run, steps, batch) in runners.items():
            rate = steps * batch / timed(run, steps)
            rates[key].append(round(rate, 1))
            print(f"repeat {repeat + 1}: {key[0]} {key[1]}: {rate:.1f} images/s", flush=True)
    result = {"cpu_bf16_flags": sorted(set(precision.CPU_BF16_FLAGS) & precision.cpu_flags()),
              "auto_policy": precision.resolve("auto"), "load_average": os.getloadavg(), "rates": {}}
    for workload in ("scratch_train_step", "vgg16_base_forward"):
        float32 = statistics.median(rates[(workload, PRECISION_FLOAT32)])
        bfloat16 = statistics.median(rates[(workload, precision.MIXED_BFLOAT16)])
        result["rates"][workload] = {PRECISION_FLOAT32: rates[(workload, PRECISION_FLOAT32)],
                                     precision.MIXED_BFLOAT16: rates[(workload, precision.MIXED_BFLOAT16)],
                                     "median_speedup": round(bfloat16 / float32, 2)}
    if args.scratch_weights and os.path.exists(args.scratch_weights):
        result["inference_precision"] = test_accuracy_per_precision(args.scratch_weights, args.data_dir)
    os.makedirs(args.results_dir, exist_ok=True)
    with open(os.path.join(args.results_dir, "precision_training.json"), "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
