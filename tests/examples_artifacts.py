"""Examples artifacts for tests: the ImageExampleGen layout written from an image
folder without running the component, and split folders found the way
components find them (TFX's artifact_utils.get_split_uri)."""
import glob
import json
import os
from typing import List, Sequence

import tensorflow as tf
from tfx.types import artifact_utils, standard_artifacts

from components import contract
from components.formats import examples as examples_format
from tests.image_files import SAMPLE_DIR

TRAINING_IMAGES_PER_CLASS = 6
"""Images per class and split that the Trainers' tests train on (pipeline_inputs in conftest.py)."""


def examples_artifact(uri: str, splits: Sequence[str] = (contract.TEST_SPLIT,)) -> standard_artifacts.Examples:
    """An Examples artifact at uri with these splits, as ImageExampleGen records it."""
    artifact = standard_artifacts.Examples()
    artifact.uri = uri
    artifact.split_names = artifact_utils.encode_split_names(list(splits))
    return artifact


def split_uri(examples_uri: str, split: str = contract.TEST_SPLIT) -> str:
    return examples_format.split_uri(examples_uri, split)


def run_image_example_gen(data_dir: str, output_dir: str, **limits) -> standard_artifacts.Examples:
    """ImageExampleGen's executor on an image folder, on the local Beam runner."""
    from components.image_example_gen.folder_run import ingest_folder
    from pipeline.configs import LOCAL_EXECUTOR_BEAM_ARGS
    return ingest_folder(data_dir, output_dir, LOCAL_EXECUTOR_BEAM_ARGS, **limits)


def read_split(examples: standard_artifacts.Examples, split: str) -> List[tf.train.Example]:
    """Every tf.Example of a split of an Examples artifact, in file order."""
    files = sorted(glob.glob(os.path.join(artifact_utils.get_split_uri([examples], split), "*.gz")))
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return [tf.train.Example.FromString(record.numpy()) for record in records]


def feature(example: tf.train.Example, key: str) -> list:
    """The values of one feature (bytes or int64) of a tf.Example."""
    value = example.features.feature[key]
    return list(value.bytes_list.value or value.int64_list.value)


def sample_files(split: str, image_root: str = SAMPLE_DIR):
    """[(path, label)] of <image_root>/<split>/<class>/*, classes sorted."""
    split_dir = os.path.join(image_root, split)
    classes = sorted(os.listdir(split_dir))
    return [(path, classes.index(name)) for name in classes
            for path in sorted(glob.glob(os.path.join(split_dir, name, "*")))]


def write_examples_artifact(uri: str, splits=(contract.TEST_SPLIT,), image_root: str = SAMPLE_DIR) -> str:
    """Gzipped TFRecords of tf.Example of <image_root>'s images in each split
    folder of an Examples artifact at uri, class_names.json at the root."""
    for split in splits:
        split_dir = split_uri(uri, split)
        os.makedirs(split_dir, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"),
                                  options) as writer:
            for path, label in sample_files(split, image_root):
                with open(path, "rb") as file:
                    image = file.read()
                relative = os.path.relpath(path, os.path.join(image_root, split))
                writer.write(tf.train.Example(features=tf.train.Features(feature={
                    contract.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image])),
                    contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
                    contract.FILENAME_KEY: tf.train.Feature(
                        bytes_list=tf.train.BytesList(value=[relative.encode()])),
                })).SerializeToString())
    with open(os.path.join(uri, contract.CLASS_NAMES_FILE), "w") as file:
        json.dump(list(contract.CATS_VS_DOGS_CLASSES), file)
    return uri
