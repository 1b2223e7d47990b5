"""Read labelled images back from ImageExampleGen's Examples artifact."""
import dataclasses
import json
import os
from typing import List, Sequence

import tensorflow as tf

from components import contract
from components.explain.errors import ExplainError

FEATURE_SPEC = {
    contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string),
    contract.LABEL_KEY: tf.io.FixedLenFeature([], tf.int64),
    contract.FILENAME_KEY: tf.io.FixedLenFeature([], tf.string),
}


@dataclasses.dataclass(frozen=True)
class LabelledImage:
    filename: str
    label: int
    image_bytes: bytes


def read_class_names(examples_uri: str) -> List[str]:
    path = os.path.join(examples_uri, contract.CLASS_NAMES_FILE)
    if not tf.io.gfile.exists(path):
        raise ExplainError(f"{path} is missing: the Examples artifact must come from "
                           "ImageExampleGen, which writes the class names there")
    with tf.io.gfile.GFile(path) as f:
        return list(json.load(f))


def read_labelled_images(split_uri: str) -> List[LabelledImage]:
    """Every example of a split folder of gzipped TFRecord files."""
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    if not files:
        raise ExplainError(f"{split_uri}: no TFRecord files")
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP").map(
        lambda record: tf.io.parse_single_example(record, FEATURE_SPEC))
    return [LabelledImage(filename=ex[contract.FILENAME_KEY].decode(),
                          label=int(ex[contract.LABEL_KEY]),
                          image_bytes=ex[contract.IMAGE_KEY])
            for ex in dataset.as_numpy_iterator()]


def fixed_selection(examples: Sequence[LabelledImage], max_images: int) -> List[LabelledImage]:
    """The same images on every run: by file name, taking classes in turn so that
    each class is shown as evenly as the split allows."""
    by_class = {}
    for example in sorted(examples, key=lambda e: e.filename):
        by_class.setdefault(example.label, []).append(example)
    queues = [by_class[label] for label in sorted(by_class)]
    chosen, position = [], 0
    while len(chosen) < max_images and any(position < len(q) for q in queues):
        chosen.extend(q[position] for q in queues if position < len(q))
        position += 1
    return chosen[:max_images]
