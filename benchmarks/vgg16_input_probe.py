"""Which input size and head VGG16's features want: fast feature extraction (listing 5.17:
the frozen base runs once, a dense head trains on its output) on the full data,
judged on the validation split only (the test split is not read).

    nice -n 10 .venv/bin/python -m benchmarks.vgg16_input_probe [--inputs 150 up224 224] [--seeds 1 2]

Inputs: `150`, Transform's images at the book's 150x150; `up224`, the same images resized
to 224x224 inside the model (what a 150x150 Transform could offer); `224`, Transform's
images at 224x224, resized once from the original files. Heads: the book's Flatten and a
global average pooling, each Dense(256) + Dropout(0.5) + sigmoid, RMSprop, 30 epochs.
Images are decoded by the pipeline's own preprocessing (components/preprocessing.py), the
base is VGG16 with the offline ImageNet weights. Features are kept in --work-dir, so a
rerun with other heads or seeds skips the base. Writes results/vgg16_input_probe.json and
RESULTS-training.md's section vgg16_input_probe.
"""
import argparse
import json
import os
import time

import keras
import numpy as np
import tensorflow as tf

from benchmarks import full_data, results_file, trainer_inputs
from components import contract
from components.image_shape import BOOK_IMAGE_SHAPE, IMAGENET_IMAGE_SHAPE
from components.models.vgg16.hparams import WEIGHTS_OFFLINE
from components.models.vgg16.network import Vgg16Parts
from components.preprocessing import decode_image
from components.training.heads import apply_layers, build_head
from components.training.hparams import POOLING_AVERAGE, POOLING_FLATTEN

HERE = os.path.dirname(os.path.abspath(__file__))
RESULTS = os.path.join(HERE, "RESULTS-training.md")
RECORD = os.path.join(HERE, "results", "vgg16_input_probe.json")
COMMAND = "nice -n 10 .venv/bin/python -m benchmarks.vgg16_input_probe"
INPUTS = {"150": (BOOK_IMAGE_SHAPE, BOOK_IMAGE_SHAPE), "up224": (BOOK_IMAGE_SHAPE, IMAGENET_IMAGE_SHAPE),
          "224": (IMAGENET_IMAGE_SHAPE, IMAGENET_IMAGE_SHAPE)}
"""name: (Transform's image shape, the shape the conv base sees)."""
LEARNING_RATES = {POOLING_FLATTEN: 2e-5, POOLING_AVERAGE: 1e-4}
"""The book's rate for its 8,192-25,088-input Flatten head; the average head has 512 inputs."""
EPOCHS = 30
LAST_EPOCHS = 10
BATCH = 20


def split_images(data_dir: str, split: str, shape):
    files = trainer_inputs.image_files(data_dir, split)
    classes = sorted(files)
    paths = [(path, label) for label, name in enumerate(classes) for path in files[name]]
    images = np.stack([decode_image(tf.io.read_file(path), shape).numpy() for path, _ in paths])
    return images, np.array([label for _, label in paths], np.float32)


def base_features(data_dir: str, name: str, work_dir: str):
    """(train features, train labels, validation features, validation labels) of one input kind."""
    cache = os.path.join(work_dir, f"features_{name}.npz")
    if os.path.exists(cache):
        saved = np.load(cache)
        return saved["train"], saved["train_labels"], saved["validation"], saved["validation_labels"]
    transform_shape, network_shape = INPUTS[name]
    parts = Vgg16Parts(WEIGHTS_OFFLINE, image_shape=network_shape, transform_shape=transform_shape)
    trunk, _ = parts.split_at("block5_pool")
    arrays = {}
    for split, key in ((contract.TRAIN_SPLIT, "train"), (contract.EVAL_SPLIT, "validation")):
        images, labels = split_images(data_dir, split, transform_shape)
        started = time.time()
        arrays[key] = trunk.predict(images, batch_size=BATCH, verbose=0)
        arrays[f"{key}_labels"] = labels
        print(f"{name}: {key} features {arrays[key].shape} in {time.time() - started:.0f} s", flush=True)
    os.makedirs(work_dir, exist_ok=True)
    np.savez(cache, **arrays)
    return arrays["train"], arrays["train_labels"], arrays["validation"], arrays["validation_labels"]


def probe(train, train_labels, validation, validation_labels, pooling: str, seed: int) -> dict:
    keras.utils.set_random_seed(seed)
    features = keras.Input(train.shape[1:])
    model = keras.Model(features, apply_layers(features, build_head(256, 0.5, 2, pooling)))
    model.compile(optimizer=keras.optimizers.RMSprop(LEARNING_RATES[pooling]), loss="binary_crossentropy",
                  metrics=["accuracy"])
    history = model.fit(train, train_labels, batch_size=BATCH, epochs=EPOCHS, verbose=0,
                        validation_data=(validation, validation_labels)).history["val_accuracy"]
    return {"best_val_accuracy": max(history), "mean_val_accuracy_last_epochs": float(np.mean(history[-LAST_EPOCHS:])),
            "val_accuracy": history}


def section(runs) -> str:
    lines = ["### VGG16's input size and head: fast feature extraction, validation accuracy", "",
             f"    {COMMAND}", "",
             f"{EPOCHS} epochs of a Dense(256) head on the frozen base's output; the mean over the last "
             f"{LAST_EPOCHS} epochs (best epoch in brackets), per seed.", "",
             "| input | head | " + " | ".join(f"seed {seed}" for seed in sorted({r['seed'] for r in runs})) + " |",
             "| --- | --- |" + " --- |" * len({r["seed"] for r in runs})]
    for name in INPUTS:
        for pooling in (POOLING_FLATTEN, POOLING_AVERAGE):
            cells = [f"{100 * r['mean_val_accuracy_last_epochs']:.2f}% ({100 * r['best_val_accuracy']:.1f}%)"
                     for r in sorted(runs, key=lambda r: r["seed"]) if (r["input"], r["head"]) == (name, pooling)]
            if cells:
                lines.append(f"| {name} | {pooling} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--inputs", nargs="+", choices=list(INPUTS), default=list(INPUTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    full_data.add_argument(parser)
    parser.add_argument("--work-dir", default="/tmp/bench_vgg16_input_probe")
    args = parser.parse_args(argv)
    data_dir = full_data.require(args.data_dir, "vgg16_input_probe")
    runs = []
    if os.path.exists(RECORD):
        with open(RECORD) as f:
            runs = json.load(f)
    for name in args.inputs:
        train, train_labels, validation, validation_labels = base_features(data_dir, name, args.work_dir)
        for pooling in (POOLING_FLATTEN, POOLING_AVERAGE):
            for seed in args.seeds:
                result = dict(probe(train, train_labels, validation, validation_labels, pooling, seed),
                              input=name, head=pooling, seed=seed)
                print(json.dumps({k: v for k, v in result.items() if k != "val_accuracy"}), flush=True)
                runs = [r for r in runs if (r["input"], r["head"], r["seed"]) != (name, pooling, seed)] + [result]
                os.makedirs(os.path.dirname(RECORD), exist_ok=True)
                with open(RECORD, "w") as f:
                    json.dump(runs, f, indent=1)
                results_file.replace_section(RESULTS, "vgg16_input_probe", section(runs))


if __name__ == "__main__":
    main()
