"""Labelled images and class names read back from ImageExampleGen's Examples artifact.

Layout: one folder per split holding gzipped TFRecord files of tf.Example
(find it with tfx.types.artifact_utils.get_split_uri), and class_names.json
(the sorted class names) at the artifact's root.
"""
import dataclasses
import json
import os
from typing import Iterator, List, Optional, Sequence

import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import contract


@dataclasses.dataclass(frozen=True)
class LabelledImage:
    filename: str
    label: int
    image_bytes: bytes


def split_uri(examples_uri: str, split: str) -> str:
    """A split's folder in the Examples artifact at examples_uri (TFX's layout),
    for code that has the artifact's URI rather than the artifact."""
    artifact = standard_artifacts.Examples()
    artifact.uri = examples_uri
    artifact.split_names = artifact_utils.encode_split_names([split])
    return artifact_utils.get_split_uri([artifact], split)


def class_names(examples_uri: str) -> List[str]:
    """class_names.json at the artifact root (written by ImageExampleGen)."""
    path = os.path.join(examples_uri, contract.CLASS_NAMES_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} is missing: the Examples artifact must come from "
                                "ImageExampleGen, which writes the class names there")
    with tf.io.gfile.GFile(path) as file:
        names = json.load(file)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path} must hold a JSON list of class names, got {names!r}")
    return names


def split_files(split_uri: str) -> List[str]:
    """The split folder's TFRecord files, sorted."""
    files = sorted(tf.io.gfile.glob(os.path.join(split_uri, "*")))
    if not files:
        raise FileNotFoundError(f"{split_uri}: no TFRecord files (is it a split of an Examples artifact?)")
    return files


def read_images(split_uri: str, limit: Optional[int] = None) -> Iterator[LabelledImage]:
    """Yields the split's images in file order; a file name missing from an
    example becomes '#<index>'."""
    count = 0
    for path in split_files(split_uri):
        compression = "GZIP" if path.endswith(".gz") else ""
        for record in tf.data.TFRecordDataset(path, compression_type=compression):
            if limit is not None and count >= limit:
                return
            features = tf.train.Example.FromString(record.numpy()).features.feature
            missing = [k for k in (contract.IMAGE_KEY, contract.LABEL_KEY) if k not in features]
            if missing:
                raise ValueError(f"example {count} of {path} lacks feature(s) {missing}")
            filename = features[contract.FILENAME_KEY].bytes_list.value if \
                contract.FILENAME_KEY in features else []
            yield LabelledImage(
                filename=filename[0].decode("utf-8", "replace") if filename else f"#{count}",
                label=int(features[contract.LABEL_KEY].int64_list.value[0]),
                image_bytes=features[contract.IMAGE_KEY].bytes_list.value[0],
            )
            count += 1


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
