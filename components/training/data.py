"""The Trainers' tf.data input function.

Reads RAW examples (gzipped TFRecords of tf.Example from ImageExampleGen),
applies Transform's graph in tf.data (decode/resize once, then cache), and for
training shuffles, batches and augments with one batched random affine transform
per image, in parallel, with prefetch. Evaluation data is never augmented.
"""
import dataclasses
from typing import Callable, Dict, List, Optional

import tensorflow as tf

from components import contract
from components.training.augmentation import augment_images
from components.training.hparams import AugmentationParams

AUTOTUNE = tf.data.AUTOTUNE
DECODE_BATCH = 64
"""Examples parsed and decoded per Transform call (the transform graph is batched)."""

TransformFn = Callable[[Dict[str, tf.Tensor]], Dict[str, tf.Tensor]]


@dataclasses.dataclass(frozen=True)
class InputSpec:
    file_pattern: List[str]
    raw_feature_spec: Dict[str, tf.io.FixedLenFeature]
    transform: TransformFn


def transform_from_output(tf_transform_output) -> TransformFn:
    """Transform's graph as a function of parsed raw features (the tft Keras layer)."""
    layer = tf_transform_output.transform_features_layer()

    def transform(raw_features):
        return layer(raw_features)
    transform.tft_layer = layer
    return transform


def raw_feature_spec(tf_transform_output) -> Dict[str, tf.io.FixedLenFeature]:
    spec = dict(tf_transform_output.raw_feature_spec())
    for key in (contract.IMAGE_KEY, contract.LABEL_KEY):
        if key not in spec:
            raise ValueError(f"raw examples lack the feature {key!r}; schema has {sorted(spec)}")
    return {key: spec[key] for key in (contract.IMAGE_KEY, contract.LABEL_KEY)}


def count_records(files: List[str]) -> int:
    """The number of examples in these gzipped TFRecord files (read, not parsed)."""
    records = tf.data.TFRecordDataset(files, compression_type="GZIP")
    return int(records.reduce(tf.constant(0, tf.int64), lambda count, _: count + 1))


def decoded_dataset(spec: InputSpec) -> tf.data.Dataset:
    """Unbatched (image float32 [H, W, 3] in [0, 1], label float32 []) pairs, deterministic order.

    Its cardinality is known (every example decodes to one pair): without it Keras
    cannot tell an epoch's end from data running out, and a fit that goes through
    the data once per epoch (steps_per_epoch None) warns "Your input ran out of
    data; interrupting training" after every full epoch and validation pass."""
    files = tf.io.gfile.glob(spec.file_pattern) if isinstance(spec.file_pattern, str) else [
        f for pattern in spec.file_pattern for f in tf.io.gfile.glob(pattern)]
    if not files:
        raise FileNotFoundError(f"no TFRecord files match {spec.file_pattern}")
    files = sorted(files)
    examples = count_records(files)
    dataset = tf.data.TFRecordDataset(files, compression_type="GZIP")
    dataset = dataset.batch(DECODE_BATCH)

    def parse_and_transform(serialized):
        transformed = spec.transform(tf.io.parse_example(serialized, spec.raw_feature_spec))
        labels = tf.cast(tf.reshape(transformed[contract.LABEL_KEY], [-1]), tf.float32)
        return transformed[contract.TRANSFORMED_IMAGE_KEY], labels

    dataset = dataset.map(parse_and_transform, num_parallel_calls=AUTOTUNE, deterministic=True)
    return dataset.unbatch().apply(tf.data.experimental.assert_cardinality(examples))


def training_dataset(decoded: tf.data.Dataset, batch_size: int, shuffle_buffer: int,
                     augmentation: Optional[AugmentationParams], repeat: bool,
                     seed: Optional[int] = None) -> tf.data.Dataset:
    """Cached decoded images -> shuffled (repeated) batches, augmented when asked."""
    dataset = decoded.cache().shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=repeat)
    if augmentation is not None:
        dataset = dataset.map(lambda images, labels: (augment_images(images, augmentation), labels),
                              num_parallel_calls=AUTOTUNE, deterministic=False)
    return dataset.prefetch(AUTOTUNE)


def evaluation_dataset(decoded: tf.data.Dataset, batch_size: int) -> tf.data.Dataset:
    """Cached, batched, never augmented."""
    return decoded.cache().batch(batch_size).prefetch(AUTOTUNE)


def input_fn(spec: InputSpec, batch_size: int, training: bool,
             augmentation: Optional[AugmentationParams] = None, shuffle_buffer: int = 2000,
             repeat: bool = False, seed: Optional[int] = None) -> tf.data.Dataset:
    """The Trainer's input function: (images, labels) batches from raw examples."""
    decoded = decoded_dataset(spec)
    if not training:
        return evaluation_dataset(decoded, batch_size)
    return training_dataset(decoded, batch_size, shuffle_buffer, augmentation, repeat, seed)
