"""Transform's preprocessing_fn: the one place where an image becomes model input.

Decode JPEG/PNG bytes to the configured channels (3, or 1 for grayscale),
resize to the configured height x width (the book's 150x150x3 unless
Transform's custom_config says otherwise, see components/image_shape.py) and
scale to [0, 1]. No analyzers: the graph is a pure function of
one example, so the Trainer applies it to raw examples in tf.data and the
exported model applies the very same graph to served image bytes.
"""
from typing import Any, Dict, Optional

import tensorflow as tf

from components import contract
from components.image_shape import BOOK_IMAGE_SHAPE, ImageShape

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG"


def decode_image(image_bytes: tf.Tensor, shape: ImageShape = BOOK_IMAGE_SHAPE) -> tf.Tensor:
    """One JPEG/PNG string -> float32 [height, width, channels] in [0, 1]."""
    header = tf.strings.substr(image_bytes, 0, 4)
    is_supported = tf.logical_or(tf.strings.substr(header, 0, 3) == _JPEG_MAGIC,
                                 header == _PNG_MAGIC)
    check = tf.debugging.Assert(
        is_supported,
        ["image bytes are neither JPEG nor PNG; first bytes:", header], name="check_image_format")
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(image_bytes, channels=shape.channels,
                                   dtype=tf.uint8, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32), [shape.height, shape.width], antialias=True)
    image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    return tf.ensure_shape(image, list(shape.as_tuple))


def decode_images(image_bytes: tf.Tensor, shape: ImageShape = BOOK_IMAGE_SHAPE) -> tf.Tensor:
    """A batch of image strings (any shape with one string per example) -> [batch, H, W, C]."""
    image_bytes = tf.reshape(image_bytes, [-1])
    return tf.map_fn(lambda one: decode_image(one, shape), image_bytes,
                     fn_output_signature=tf.TensorSpec(list(shape.as_tuple), tf.float32))


def preprocessing_fn(inputs, custom_config: Optional[Dict[str, Any]] = None):
    """tf.Transform entry point (referenced as components.preprocessing.preprocessing_fn).

    custom_config: Transform's, {"image_shape": {"height", "width", "channels"}};
    the pipeline sets it from the selected models."""
    shape = ImageShape.from_custom_config(custom_config)
    outputs = {contract.TRANSFORMED_IMAGE_KEY: decode_images(inputs[contract.IMAGE_KEY], shape)}
    if contract.LABEL_KEY in inputs:
        outputs[contract.LABEL_KEY] = tf.reshape(inputs[contract.LABEL_KEY], [-1])
    return outputs
