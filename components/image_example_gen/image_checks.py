"""Decides whether one input file becomes an example, and if not, why.

The checks mirror what the rest of the pipeline needs: Transform and the
serving graph decode with TensorFlow's JPEG/PNG decoders, so a file is accepted
only if TensorFlow decodes it to a 3-channel image.
"""
import dataclasses
import io
import os
import re
import warnings
from typing import Optional

from components import contract

# MPO (multi-picture JPEG, what many phone cameras write) is a baseline JPEG
# followed by more pictures; TensorFlow's decoders read the first one, which is
# the picture a viewer shows.
ACCEPTED_FORMATS = ("JPEG", "MPO", "PNG")

EXIF_ORIENTATION_TAG = 0x0112
"""EXIF Orientation: 1 is upright; 2-8 ask a viewer to rotate or mirror the pixels."""


@dataclasses.dataclass(frozen=True)
class ImageLimits:
    max_pixels: int = contract.DEFAULT_MAX_IMAGE_PIXELS


@dataclasses.dataclass(frozen=True)
class ImageCheck:
    """The verdict on one file: rejection reason (None = accepted) and, for an
    accepted image, its EXIF orientation when that is not 1 (upright)."""
    reason: Optional[str] = None
    exif_orientation: Optional[int] = None


def has_image_extension(path: str) -> bool:
    return os.path.splitext(path)[1].lower() in contract.IMAGE_EXTENSIONS


def check_image(data: bytes, limits: ImageLimits) -> ImageCheck:
    """Checks one file's bytes; never raises for bad content (the reason says what is wrong)."""
    # PIL reads only the header here, so the format and the size are checked
    # before anything is decoded (a 50-megapixel bomb is refused unopened).
    import tensorflow as tf  # pylint: disable=import-outside-toplevel
    from PIL import Image, UnidentifiedImageError  # pylint: disable=import-outside-toplevel

    if not data:
        return ImageCheck("empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            # PIL warns above 89 megapixels; the size check below decides with our own limit.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:
                image_format, (width, height) = image.format, image.size
                orientation = _exif_orientation(image)
    except Image.DecompressionBombError as error:
        # Over twice PIL's limit (179 megapixels) PIL refuses to open the file at all.
        return ImageCheck(f"image too large (header claims a decompression bomb): {error}")
    except UnidentifiedImageError:
        return ImageCheck("not an image: the content is not in any image format")
    except (OSError, ValueError, SyntaxError) as error:
        return ImageCheck(f"unreadable image header: {error}")
    if image_format not in ACCEPTED_FORMATS:
        return ImageCheck(f"unsupported image format {image_format} (accepted: {', '.join(ACCEPTED_FORMATS)})")
    if width * height > limits.max_pixels:
        return ImageCheck(f"image too large: {width}x{height} = {width * height / 1e6:.1f} megapixels "
                          f"(limit {limits.max_pixels / 1e6:.0f})")
    if width == 0 or height == 0:
        return ImageCheck(f"image has no pixels ({width}x{height})")
    try:
        tf.io.decode_image(data, channels=contract.IMAGE_CHANNELS, expand_animations=False)
    except (tf.errors.InvalidArgumentError, tf.errors.DataLossError) as error:
        return ImageCheck(f"corrupt or truncated {image_format}: {_tf_error_text(error)}")
    return ImageCheck(exif_orientation=orientation if orientation not in (None, 1) else None)


def _exif_orientation(image) -> Optional[int]:
    """The EXIF Orientation value, or None when the file has none (or unreadable EXIF:
    the pixels still decode, and nothing in the pipeline applies EXIF)."""
    try:
        value = image.getexif().get(EXIF_ORIENTATION_TAG)
    except Exception:  # pylint: disable=broad-except
        return None
    return value if isinstance(value, int) else None


def _tf_error_text(error) -> str:
    """TensorFlow's message without its op-location decorations."""
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", error.message)
    return " ".join(text.split())
