"""Decides whether one input file becomes an example, and if not, why.

The checks mirror what the rest of the pipeline needs: Transform and the
serving graph decode with TensorFlow's JPEG/PNG decoders, so a file is accepted
only if TensorFlow decodes it to a 3-channel image.
"""
import dataclasses
import io
import os
import re
from typing import Optional

from components import contract

ACCEPTED_FORMATS = ("JPEG", "PNG")


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = 50_000_000


def has_image_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in contract.IMAGE_EXTENSIONS


def rejection_reason(data: bytes, limits: ImageLimits) -> Optional[str]:
    """None if the bytes are a decodable JPEG/PNG image within limits, else the reason."""
    # PIL reads only the header here, so the format and the size are checked
    # before anything is decoded (a 50-megapixel bomb is refused unopened).
    from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel
    import tensorflow as tf  # pylint: disable=import-outside-toplevel

    if not data:
        return "empty file (0 bytes)"
    try:
        with Image.open(io.BytesIO(data)) as image:
            image_format, (width, height) = image.format, image.size
    except UnidentifiedImageError:
        return "not an image: the content is not in any image format"
    except (OSError, ValueError) as error:
        return f"unreadable image header: {error}"
    if image_format not in ACCEPTED_FORMATS:
        return f"unsupported image format {image_format} (accepted: {', '.join(ACCEPTED_FORMATS)})"
    if width * height > limits.max_pixels:
        return (f"image too large: {width}x{height} = {width * height / 1e6:.1f} megapixels "
                f"(limit {limits.max_pixels / 1e6:.0f})")
    if width == 0 or height == 0:
        return f"image has no pixels ({width}x{height})"
    try:
        tf.io.decode_image(data, channels=contract.IMAGE_CHANNELS, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        return f"corrupt or truncated {image_format}: {_tf_error_text(error)}"
    return None


def _tf_error_text(error) -> str:
    """TensorFlow's message without its op-location decorations."""
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", error.message)
    return " ".join(text.split())
