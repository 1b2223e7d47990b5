"""Image size from the first bytes of a JPEG or PNG, without decoding it.

The server checks every image against its pixel limit before TensorFlow
decodes it (a 481 KB request can hold four 100-megapixel PNGs that decode to
1.2 GB each). Only the contract's formats, JPEG and PNG, are read; anything
else is refused before it reaches the model.
"""
from typing import Optional, Tuple

from components import contract

DEFAULT_MAX_IMAGE_PIXELS = contract.DEFAULT_MAX_IMAGE_PIXELS  # the same limit as ingestion's

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_START = b"\xff\xd8\xff"
# Start-of-frame markers (SOF0..SOF15) carry the frame size; C4 (DHT), C8 (JPG)
# and CC (DAC) share the range but are not frames.
_JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0-7, SOI.
_JPEG_STANDALONE_MARKERS = frozenset([0x01, 0xD8, *range(0xD0, 0xD8)])
_JPEG_SCAN_OR_END = frozenset([0xDA, 0xD9])


class ImageHeaderError(ValueError):
    """The bytes are not a JPEG or PNG whose size can be read."""


def _first_bytes(data: bytes) -> str:
    return " ".join(f"{byte:02x}" for byte in data[:8]) or "nothing (0 bytes)"


def _jpeg_size(data: bytes) -> Tuple[int, int]:
    position = 2
    while True:
        if position >= len(data):
            raise ImageHeaderError("truncated JPEG: it ends before its frame header")
        if data[position] != 0xFF:
            raise ImageHeaderError(f"corrupt JPEG: no segment marker at byte {position}")
        while position < len(data) and data[position] == 0xFF:  # fill bytes
            position += 1
        if position >= len(data):
            raise ImageHeaderError("truncated JPEG: it ends before its frame header")
        marker = data[position]
        position += 1
        if marker in _JPEG_STANDALONE_MARKERS:
            continue
        if marker in _JPEG_SCAN_OR_END:
            raise ImageHeaderError("corrupt JPEG: image data before any frame header")
        if position + 2 > len(data):
            raise ImageHeaderError("truncated JPEG: it ends inside a segment header")
        length = int.from_bytes(data[position:position + 2], "big")
        if length < 2:
            raise ImageHeaderError(f"corrupt JPEG: segment length {length} at byte {position}")
        if marker in _JPEG_FRAME_MARKERS:
            if position + 7 > len(data):
                raise ImageHeaderError("truncated JPEG: it ends inside its frame header")
            height = int.from_bytes(data[position + 3:position + 5], "big")
            width = int.from_bytes(data[position + 5:position + 7], "big")
            return width, height
        position += length


def image_size(data: bytes) -> Tuple[str, int, int]:
    """(format, width, height) read from the header; ImageHeaderError if the
    bytes are no JPEG or PNG or their header is unreadable."""
    if data.startswith(_PNG_SIGNATURE):
        if len(data) < 24 or data[12:16] != b"IHDR":
            raise ImageHeaderError("corrupt PNG: no IHDR header")
        return "PNG", int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    if data.startswith(_JPEG_START):
        return ("JPEG", *_jpeg_size(data))
    raise ImageHeaderError(f"not a JPEG or PNG image (first bytes: {_first_bytes(data)})")


def size_problem(data: bytes, max_pixels: int) -> Optional[str]:
    """Why these bytes may not be decoded (no JPEG/PNG, no pixels, over the
    limit), or None. max_pixels <= 0: no limit."""
    try:
        image_format, width, height = image_size(data)
    except ImageHeaderError as error:
        return str(error)
    if width == 0 or height == 0:
        return f"{image_format} header gives no size ({width}x{height})"
    if 0 < max_pixels < width * height:
        return (f"{image_format} of {width}x{height} = {width * height / 1e6:.3g} megapixels is over "
                f"the limit of {max_pixels / 1e6:.3g} megapixels")
    return None
