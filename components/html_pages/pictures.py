"""Pictures inlined in HTML pages as data: URIs."""
import base64
import io

import numpy as np
from PIL import Image

JPEG_QUALITY = 85
_MIME = {"JPEG": "image/jpeg", "PNG": "image/png"}


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode()}"


def picture_data_uri(picture: Image.Image, fmt: str) -> str:
    """A PIL image as a JPEG (quality 85) or PNG data URI."""
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **({"quality": JPEG_QUALITY} if fmt == "JPEG" else {}))
    return data_uri(buffer.getvalue(), _MIME[fmt])


def array_data_uri(image: np.ndarray, max_width: int, fmt: str) -> str:
    """uint8 [height, width, 3], scaled down (Lanczos) to max_width when wider."""
    picture = Image.fromarray(image)
    if picture.width > max_width:
        picture = picture.resize((max_width, round(picture.height * max_width / picture.width)), Image.LANCZOS)
    return picture_data_uri(picture, fmt)


def thumbnail_data_uri(image_bytes: bytes, size: int) -> str:
    """An encoded image as a JPEG thumbnail at most size x size; tiny images
    (e.g. 28x28 digits) are enlarged first, keeping the pixels sharp."""
    picture = Image.open(io.BytesIO(image_bytes)).convert("RGB")
    if max(picture.size) < size // 2:
        scale = size // max(picture.size)
        picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    picture.thumbnail((size, size))
    return picture_data_uri(picture, "JPEG")


def figure_data_uri(figure) -> str:
    """A matplotlib figure as a PNG data URI (100 dpi, tight bounding box)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return data_uri(buffer.getvalue(), "image/png")
