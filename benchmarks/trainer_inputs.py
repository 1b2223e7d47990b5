"""Real inputs for a Trainer's run_fn outside a pipeline (benchmarks, tests):
gzipped TFRecords of tf.Example laid out like ImageExampleGen's Examples artifact
(a folder per split and class_names.json at the root), and Transform's graph
built by tf.Transform on Beam from the project's own preprocessing_fn."""
import functools
import json
import os
from typing import Dict, List, Optional

import apache_beam as beam
import tensorflow as tf
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from tensorflow_transform.tf_metadata import dataset_metadata, metadata_io, schema_utils
from tfx.components.trainer.fn_args_utils import FnArgs

from components import contract
from components.formats import examples
from components.preprocessing import preprocessing_fn
from pipeline.configs import LOCAL_BEAM_ARGS

RAW_FEATURE_SPEC = {
    # Shapes as SchemaGen(infer_feature_shape=True) declares single-valued features.
    contract.IMAGE_KEY: tf.io.FixedLenFeature([1], tf.string),
    contract.LABEL_KEY: tf.io.FixedLenFeature([1], tf.int64),
    contract.FILENAME_KEY: tf.io.FixedLenFeature([1], tf.string),
}


def image_files(image_root: str, split: str, limit_per_class: Optional[int] = None) -> Dict[str, List[str]]:
    split_dir = os.path.join(image_root, split)
    classes = sorted(d for d in os.listdir(split_dir) if os.path.isdir(os.path.join(split_dir, d)))
    files = {}
    for name in classes:
        paths = sorted(os.path.join(split_dir, name, f) for f in os.listdir(os.path.join(split_dir, name))
                       if f.lower().endswith(contract.IMAGE_EXTENSIONS))
        files[name] = paths[:limit_per_class]
    return files


def make_example(image_bytes: bytes, label: int, filename: str) -> tf.train.Example:
    feature = {
        contract.IMAGE_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[image_bytes])),
        contract.LABEL_KEY: tf.train.Feature(int64_list=tf.train.Int64List(value=[label])),
        contract.FILENAME_KEY: tf.train.Feature(bytes_list=tf.train.BytesList(value=[filename.encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature))


def write_examples(image_root: str, examples_dir: str, splits=contract.SPLITS,
                   limit_per_class: Optional[int] = None) -> str:
    """ImageExampleGen's output layout from a SPLIT/CLASS/ image folder."""
    class_names = None
    for split in splits:
        files = image_files(image_root, split, limit_per_class)
        class_names = sorted(files)
        split_dir = examples.split_uri(examples_dir, split)
        os.makedirs(split_dir, exist_ok=True)
        options = tf.io.TFRecordOptions(compression_type="GZIP")
        with tf.io.TFRecordWriter(os.path.join(split_dir, "data_tfrecord-00000-of-00001.gz"), options) as w:
            for name, paths in files.items():
                for path in paths:
                    with open(path, "rb") as f:
                        example = make_example(f.read(), class_names.index(name),
                                               f"{name}/{os.path.basename(path)}")
                    w.write(example.SerializeToString())
    with open(os.path.join(examples_dir, contract.CLASS_NAMES_FILE), "w") as f:
        json.dump(class_names, f)
    return examples_dir


def build_transform_graph(image_path: str, transform_dir: str, custom_config: Optional[dict] = None) -> str:
    """Runs tf.Transform (AnalyzeDataset, Beam in-process) with the project's preprocessing_fn,
    bound to `custom_config` (Transform's; e.g. ImageShape(...).as_custom_config()) as TFX does."""
    metadata = dataset_metadata.DatasetMetadata(schema_utils.schema_from_feature_spec(RAW_FEATURE_SPEC))
    with open(image_path, "rb") as f:
        instance = {contract.IMAGE_KEY: [f.read()], contract.LABEL_KEY: [0],
                    contract.FILENAME_KEY: [os.path.basename(image_path).encode()]}
    with beam.Pipeline(argv=list(LOCAL_BEAM_ARGS)) as pipeline:
        with tft_beam.Context(temp_dir=os.path.join(transform_dir, "tmp")):
            transform_fn = ((pipeline | beam.Create([instance]), metadata)
                            | tft_beam.AnalyzeDataset(functools.partial(
                                preprocessing_fn, custom_config=custom_config)))
            _ = transform_fn | tft_beam.WriteTransformFn(transform_dir)
    # TFX's Transform also records the raw schema beside the graph (the Trainer reads it).
    metadata_io.write_metadata(metadata, os.path.join(transform_dir, tft.TFTransformOutput.RAW_METADATA_DIR))
    return transform_dir


def fn_args(examples_dir: str, transform_dir: str, output_dir: str, custom_config: dict,
            eval_split: str = contract.EVAL_SPLIT) -> FnArgs:
    """What the TFX Trainer hands run_fn, for a train/eval split of write_examples' output."""
    return FnArgs(
        train_files=[os.path.join(examples.split_uri(examples_dir, contract.TRAIN_SPLIT), "*")],
        eval_files=[os.path.join(examples.split_uri(examples_dir, eval_split), "*")],
        transform_output=transform_dir, transform_graph_path=transform_dir,
        serving_model_dir=os.path.join(output_dir, "serving_model_dir"),
        model_run_dir=os.path.join(output_dir, "model_run"),
        working_dir=output_dir, custom_config=custom_config)
