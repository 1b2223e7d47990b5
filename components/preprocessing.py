"""Transform's preprocessing_fn: the one place where an image becomes model input.

Decode JPEG/PNG bytes to 3 channels, resize to contract.IMAGE_HEIGHT x
IMAGE_WIDTH and scale to [0, 1]. No analyzers: the graph is a pure function of
one example, so the Trainer applies it to raw examples in tf.data and the
exported model applies the very same graph to served image bytes.
"""
import tensorflow as tf

from components import contract

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG"


def decode_image(image_bytes: tf.Tensor) -> tf.Tensor:
    """One JPEG/PNG string -> float32 [IMAGE_HEIGHT, IMAGE_WIDTH, 3] in [0, 1]."""
    header = tf.strings.substr(image_bytes, 0, 4)
    is_supported = tf.logical_or(tf.strings.substr(header, 0, 3) == _JPEG_MAGIC,
                                 header == _PNG_MAGIC)
    check = tf.debugging.Assert(
        is_supported,
        ["image bytes are neither JPEG nor PNG; first bytes:", header], name="check_image_format")
    with tf.control_dependencies([check]):
        image = tf.io.decode_image(image_bytes, channels=contract.IMAGE_CHANNELS,
                                   dtype=tf.uint8, expand_animations=False)
    image = tf.image.resize(tf.cast(image, tf.float32),
                            [contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH], antialias=True)
    image = tf.clip_by_value(image / 255.0, 0.0, 1.0)
    return tf.ensure_shape(image, [contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH,
                                   contract.IMAGE_CHANNELS])


def decode_images(image_bytes: tf.Tensor) -> tf.Tensor:
    """A batch of image strings (any shape with one string per example) -> [batch, H, W, 3]."""
    image_bytes = tf.reshape(image_bytes, [-1])
    return tf.map_fn(decode_image, image_bytes, fn_output_signature=tf.TensorSpec(
        [contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, contract.IMAGE_CHANNELS], tf.float32))


def preprocessing_fn(inputs):
    """tf.Transform entry point (referenced as components.preprocessing.preprocessing_fn)."""
    outputs = {contract.TRANSFORMED_IMAGE_KEY: decode_images(inputs[contract.IMAGE_KEY])}
    if contract.LABEL_KEY in inputs:
        outputs[contract.LABEL_KEY] = tf.reshape(inputs[contract.LABEL_KEY], [-1])
    return outputs
