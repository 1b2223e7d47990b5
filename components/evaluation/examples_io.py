"""Reading raw images back out of an ImageExampleGen Examples artifact."""
import dataclasses
import json
import os
from typing import Iterator, List, Optional

import tensorflow as tf

from components import contract

@dataclasses.dataclass(frozen=True)
class LabelledImage:
    image_bytes: bytes
    label: int
    filename: str

def split_files(examples_uri: str, split: str) -> List[str]:
    """The split's TFRecord files (TFX layout: <uri>/Split-<split>/*)."""
    pattern = os.path.join(examples_uri, f"Split-{split}", "*")
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no '{split}' split in the Examples artifact {examples_uri} "
                                f"(looked for {pattern})")
    return files

def read_images(examples_uri: str, split: str = contract.TEST_SPLIT,
                limit: Optional[int] = None) -> Iterator[LabelledImage]:
    """Yields the split's images in file order (gzipped TFRecords of tf.Example)."""
    count = 0
    for path in split_files(examples_uri, split):
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
                image_bytes=features[contract.IMAGE_KEY].bytes_list.value[0],
                label=int(features[contract.LABEL_KEY].int64_list.value[0]),
                filename=filename[0].decode("utf-8", "replace") if filename else f"#{count}",
            )
            count += 1

def class_names(examples_uri: str) -> List[str]:
    """class_names.json at the artifact root (written by ImageExampleGen)."""
    path = os.path.join(examples_uri, contract.CLASS_NAMES_FILE)
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path} is missing: was the Examples artifact written by ImageExampleGen?")
    with tf.io.gfile.GFile(path) as file:
        names = json.load(file)
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise ValueError(f"{path} must hold a JSON list of class names, got {names!r}")
    return names
