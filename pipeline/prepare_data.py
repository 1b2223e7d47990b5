"""`catsdogs prepare-data`: builds the SPLIT/CLASS/ folders the pipeline reads.

--kaggle-train DIR reproduces the book's split (listing 5.4) from Kaggle's
Dogs vs. Cats train/ folder of cat.N.jpg / dog.N.jpg files: per class, indices
0-999 train, 1000-1499 validation, 1500-1999 test (sizes configurable).

--digits writes scikit-learn's 1,797 real handwritten digits (8x8, upscaled
to MNIST's 28x28) as PNG class folders 0-9 with a fixed stratified split: the
offline stand-in for MNIST (listings 5.1-5.3).

--mnist-idx DIR converts the standard MNIST IDX files (as downloaded, .gz or
not) to the same PNG folders; the last 10,000 training images become validation.
"""
import argparse
import dataclasses
import gzip
import os
import re
import shutil
import struct
import sys
from typing import Dict, List, Tuple

import numpy as np

# Kaggle file prefix -> class folder name (the book's folder names)
KAGGLE_CLASSES = {"cat": "cats", "dog": "dogs"}
_KAGGLE_NAME = re.compile(r"^(cat|dog)\.(\d+)\.jpg$")


class PrepareDataError(ValueError):
    pass


@dataclasses.dataclass(frozen=True)
class SplitSizes:
    """Images per class in each split, taken in index order (the book: 1000/500/500)."""
    train: int = 1000
    validation: int = 500
    test: int = 500

    def ranges(self) -> Dict[str, range]:
        return {"train": range(0, self.train),
                "validation": range(self.train, self.train + self.validation),
                "test": range(self.train + self.validation, self.train + self.validation + self.test)}


def kaggle_split(kaggle_train_dir: str, out_dir: str, sizes: SplitSizes = SplitSizes(),
                 link: bool = False) -> Dict[str, Dict[str, int]]:
    """Copies (or hard-links) the book's split; returns counts per split and class."""
    if not os.path.isdir(kaggle_train_dir):
        raise PrepareDataError(f"Kaggle train folder {kaggle_train_dir} does not exist "
                               "(expected the unzipped train/ folder with cat.N.jpg and dog.N.jpg)")
    available = {prefix: set() for prefix in KAGGLE_CLASSES}
    for name in os.listdir(kaggle_train_dir):
        match = _KAGGLE_NAME.match(name)
        if match:
            available[match.group(1)].add(int(match.group(2)))
    plan: List[tuple] = []
    for prefix, class_name in KAGGLE_CLASSES.items():
        for split, indices in sizes.ranges().items():
            missing = [i for i in indices if i not in available[prefix]]
            if missing:
                raise PrepareDataError(
                    f"{len(missing)} of the {len(indices)} {split} images for {class_name} are missing in "
                    f"{kaggle_train_dir}, e.g. {prefix}.{missing[0]}.jpg; "
                    f"{len(available[prefix])} {prefix}.N.jpg files found")
            plan.extend((split, class_name, f"{prefix}.{i}.jpg") for i in indices)
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise PrepareDataError(f"output folder {out_dir} is not empty; choose a new one")
    counts: Dict[str, Dict[str, int]] = {}
    for done, (split, class_name, name) in enumerate(plan, start=1):
        target_dir = os.path.join(out_dir, split, class_name)
        os.makedirs(target_dir, exist_ok=True)
        source, target = os.path.join(kaggle_train_dir, name), os.path.join(target_dir, name)
        os.link(source, target) if link else shutil.copyfile(source, target)
        counts.setdefault(split, {}).setdefault(class_name, 0)
        counts[split][class_name] += 1
        if done % 1000 == 0 or done == len(plan):
            print(f"prepare-data: {done}/{len(plan)} files", file=sys.stderr)
    return counts


DIGITS_IMAGE_SIZE = 28
DIGITS_SPLIT_SEED = 0
DIGITS_SPLIT_FRACTIONS = {"validation": 0.2, "test": 0.2}  # the rest is train
MNIST_VALIDATION_SIZE = 10_000
MNIST_FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
               "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def _write_png_folders(out_dir: str, splits: Dict[str, Tuple[np.ndarray, np.ndarray]]) -> Dict[str, Dict[str, int]]:
    """Writes uint8 grayscale images [n, h, w] as OUT/SPLIT/<label>/<index>.png."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    if os.path.isdir(out_dir) and os.listdir(out_dir):
        raise PrepareDataError(f"output folder {out_dir} is not empty; choose a new one")
    counts: Dict[str, Dict[str, int]] = {}
    for split, (images, labels) in splits.items():
        for index, (image, label) in enumerate(zip(images, labels)):
            class_dir = os.path.join(out_dir, split, str(int(label)))
            os.makedirs(class_dir, exist_ok=True)
            Image.fromarray(image, mode="L").save(os.path.join(class_dir, f"{split}_{index:05d}.png"))
            counts.setdefault(split, {}).setdefault(str(int(label)), 0)
            counts[split][str(int(label))] += 1
        print(f"prepare-data: {split}: {len(images)} images", file=sys.stderr)
    return counts


def digits_split(out_dir: str) -> Dict[str, Dict[str, int]]:
    """scikit-learn's handwritten digits as 28x28 PNG class folders, split 60/20/20 (stratified, fixed seed)."""
    from PIL import Image  # pylint: disable=import-outside-toplevel
    from sklearn.datasets import load_digits  # pylint: disable=import-outside-toplevel
    from sklearn.model_selection import train_test_split  # pylint: disable=import-outside-toplevel

    digits = load_digits()
    # 0..16 intensities -> 0..255, then MNIST's size (bilinear, like a scanner would smooth it)
    small = (digits.images * (255.0 / 16.0)).round().astype(np.uint8)
    images = np.stack([np.asarray(Image.fromarray(image, mode="L").resize(
        (DIGITS_IMAGE_SIZE, DIGITS_IMAGE_SIZE), Image.BILINEAR)) for image in small])
    held_out = DIGITS_SPLIT_FRACTIONS["validation"] + DIGITS_SPLIT_FRACTIONS["test"]
    train_x, rest_x, train_y, rest_y = train_test_split(
        images, digits.target, test_size=held_out, stratify=digits.target, random_state=DIGITS_SPLIT_SEED)
    val_x, test_x, val_y, test_y = train_test_split(
        rest_x, rest_y, test_size=DIGITS_SPLIT_FRACTIONS["test"] / held_out, stratify=rest_y,
        random_state=DIGITS_SPLIT_SEED)
    return _write_png_folders(out_dir, {"train": (train_x, train_y), "validation": (val_x, val_y),
                                        "test": (test_x, test_y)})


def read_idx(path: str) -> np.ndarray:
    """Reads one IDX file (MNIST's format), plain or gzipped."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as file:
        data = file.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != 0x08:
        raise PrepareDataError(f"{path} is not an IDX file of unsigned bytes")
    n_dims = data[3]
    shape = struct.unpack(f">{n_dims}I", data[4:4 + 4 * n_dims])
    values = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * n_dims)
    if values.size != int(np.prod(shape)):
        raise PrepareDataError(f"{path} is truncated: header says {shape}, {values.size} values found")
    return values.reshape(shape)


def _find_idx(folder: str, stem: str) -> str:
    for name in (stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"):
        if os.path.exists(os.path.join(folder, name)):
            return os.path.join(folder, name)
    raise PrepareDataError(f"{stem}[.gz] not found in {folder} (expected the four standard MNIST IDX files)")


def mnist_idx_split(idx_dir: str, out_dir: str,
                    validation_size: int = MNIST_VALIDATION_SIZE) -> Dict[str, Dict[str, int]]:
    if not os.path.isdir(idx_dir):
        raise PrepareDataError(f"MNIST folder {idx_dir} does not exist")
    arrays = {split: (read_idx(_find_idx(idx_dir, images)), read_idx(_find_idx(idx_dir, labels)))
              for split, (images, labels) in MNIST_FILES.items()}
    for split, (images, labels) in arrays.items():
        if len(images) != len(labels):
            raise PrepareDataError(f"MNIST {split}: {len(images)} images but {len(labels)} labels")
    (train_x, train_y), test = arrays["train"], arrays["test"]
    if not 0 < validation_size < len(train_x):
        raise PrepareDataError(f"validation size {validation_size} must be between 1 and {len(train_x) - 1}")
    return _write_png_folders(out_dir, {
        "train": (train_x[:-validation_size], train_y[:-validation_size]),
        "validation": (train_x[-validation_size:], train_y[-validation_size:]),
        "test": test})


def add_arguments(parser: argparse.ArgumentParser, command: str) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--kaggle-train", metavar="DIR",
                        help="Kaggle Dogs vs. Cats train/ folder (cat.N.jpg, dog.N.jpg)")
    source.add_argument("--digits", action="store_true",
                        help="scikit-learn's handwritten digits as 28x28 PNG folders (offline MNIST stand-in)")
    source.add_argument("--mnist-idx", metavar="DIR", help="folder with MNIST's four IDX files (.gz or not)")
    parser.add_argument("--out", required=True, metavar="DIR", help="new folder for train/validation/test")
    defaults = SplitSizes()
    for split in ("train", "validation", "test"):
        parser.add_argument(f"--{split}-per-class", type=int, default=getattr(defaults, split),
                            help=f"images per class in {split} (Kaggle; default: %(default)s, the book's)")
    parser.add_argument("--link", action="store_true", help="hard-link instead of copying (Kaggle)")


def run(args: argparse.Namespace) -> int:
    sizes = SplitSizes(args.train_per_class, args.validation_per_class, args.test_per_class)
    try:
        if args.digits:
            counts = digits_split(args.out)
        elif args.mnist_idx:
            counts = mnist_idx_split(args.mnist_idx, args.out)
        else:
            counts = kaggle_split(args.kaggle_train, args.out, sizes, link=args.link)
    except PrepareDataError as error:
        print(f"prepare-data: {error}", file=sys.stderr)
        return 2
    for split, per_class in counts.items():
        print(f"{split}: " + ", ".join(f"{name} {n}" for name, n in sorted(per_class.items())))
    print(f"Data ready: {os.path.abspath(args.out)} (use --data-dir {args.out})")
    return 0
