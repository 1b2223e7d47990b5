"""Real image files for tests: copies of the shipped sample and broken files written on purpose."""
import io
import os
import shutil
import struct
import zlib
from typing import Dict, Iterable

from PIL import Image

SAMPLE_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "sample")


def copy_sample(dest: str, per_class: int, splits: Iterable[str] = ("train", "validation", "test"),
                classes: Iterable[str] = ("cats", "dogs")) -> Dict[str, int]:
    """Copies the first `per_class` sample images of each class and split; returns counts per split."""
    counts = {}
    for split in splits:
        counts[split] = 0
        for class_name in classes:
            source = os.path.join(SAMPLE_DIR, split, class_name)
            target = os.path.join(dest, split, class_name)
            os.makedirs(target, exist_ok=True)
            for name in sorted(os.listdir(source))[:per_class]:
                shutil.copy(os.path.join(source, name), target)
                counts[split] += 1
    return counts


def sample_jpeg_bytes() -> bytes:
    with open(os.path.join(SAMPLE_DIR, "train", "cats", "cat.0.jpg"), "rb") as file:
        return file.read()


def image_bytes(image_format: str, size=(32, 24), mode="RGB") -> bytes:
    buffer = io.BytesIO()
    Image.new(mode, size, color=128 if mode == "L" else (200, 100, 50)).save(buffer, image_format)
    return buffer.getvalue()


def write(path: str, data: bytes) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as file:
        file.write(data)
    return path


def png_claiming_size(width: int, height: int) -> bytes:
    """A valid-looking PNG of a few dozen bytes whose header claims width x height
    (a decompression bomb as far as any reader that trusts the header is concerned)."""
    def chunk(kind: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + chunk(b"IEND", b""))


def mpo_bytes(size=(40, 30)) -> bytes:
    """A multi-picture JPEG (MPO, as phone cameras write): two pictures, red first."""
    buffer = io.BytesIO()
    first, second = Image.new("RGB", size, (200, 10, 10)), Image.new("RGB", size, (10, 200, 10))
    first.save(buffer, format="MPO", save_all=True, append_images=[second])
    return buffer.getvalue()


def jpeg_with_exif_orientation(orientation: int, size=(40, 30)) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    buffer = io.BytesIO()
    Image.new("RGB", size, (10, 10, 200)).save(buffer, format="JPEG", exif=exif.tobytes())
    return buffer.getvalue()
