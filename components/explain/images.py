"""Images in and out: decode a file the way the pipeline does, and write PNGs.

The model input must be exactly what the Trainer saw, so it comes from
Transform's own function (components.preprocessing.decode_image: decode,
resize to the model's input height x width x channels, scale to [0, 1]). The
original (full resolution, uint8 RGB) is kept for Grad-CAM's superimposed picture.
"""
import dataclasses
import os

import numpy as np
import tensorflow as tf
from PIL import Image

from components import contract, preprocessing
from components.explain.errors import ImageDecodeError
from components.image_shape import BOOK_IMAGE_SHAPE, ImageShape


@dataclasses.dataclass(frozen=True)
class ExplainImage:
    source: str
    original: np.ndarray
    """uint8 [height, width, 3] as decoded."""
    model_input: np.ndarray
    """float32 [height, width, channels] in [0, 1]: the model's input shape."""


def _decode_error(source: str, error: tf.errors.OpError) -> ImageDecodeError:
    return ImageDecodeError(
        f"{source}: not a JPEG or PNG image ({error.message.strip().splitlines()[0]}); "
        f"expected one of {', '.join(contract.IMAGE_EXTENSIONS)}")


def explain_image_from_bytes(image_bytes: bytes, source: str,
                             shape: ImageShape = BOOK_IMAGE_SHAPE) -> ExplainImage:
    """Original and model input of a JPEG/PNG file's bytes; ImageDecodeError naming
    `source` for anything else."""
    if not image_bytes:
        raise ImageDecodeError(f"{source}: empty file, expected a JPEG or PNG image")
    encoded = tf.constant(image_bytes)
    try:
        model_input = preprocessing.decode_image(encoded, shape).numpy()
        original = tf.io.decode_image(encoded, channels=contract.IMAGE_CHANNELS,
                                      expand_animations=False).numpy()
    except (tf.errors.InvalidArgumentError, tf.errors.UnimplementedError) as error:
        raise _decode_error(source, error) from None
    return ExplainImage(source=source, original=original, model_input=model_input)


def load_image(path: str, shape: ImageShape = BOOK_IMAGE_SHAPE) -> ExplainImage:
    if not os.path.isfile(path):
        raise ImageDecodeError(f"{path}: no such image file")
    with open(path, "rb") as f:
        return explain_image_from_bytes(f.read(), path, shape)


def save_png(image: np.ndarray, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    Image.fromarray(image).save(path, format="PNG")
    return path
