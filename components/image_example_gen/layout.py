"""Reads the folder layout SPLIT/CLASS/FILE and refuses a layout that cannot train.

Runs before any Beam work so that a wrong --data-dir fails at once, with a
message that says what was expected.
"""
import dataclasses
import os
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from components import contract
from components.image_example_gen.image_checks import has_image_extension


class DataLayoutError(ValueError):
    """The data directory does not have the SPLIT/CLASS/image layout."""


@dataclasses.dataclass(frozen=True)
class SplitListing:
    name: str
    image_files: Tuple[Tuple[str, str], ...]  # (path, class name)
    skipped: Tuple[Tuple[str, str], ...]  # (path, reason): files that are not images by name


@dataclasses.dataclass(frozen=True)
class DataLayout:
    root: str
    class_names: Tuple[str, ...]
    splits: Dict[str, SplitListing]


def expected_layout(root: str, splits: Sequence[str]) -> str:
    return (f"expected {root}/<split>/<class>/<image> with splits {', '.join(splits)}, "
            f"at least two class folders per split and {'/'.join(contract.IMAGE_EXTENSIONS)} files")


def _class_dirs(split_dir: str) -> List[str]:
    return sorted(name.rstrip("/") for name in tf.io.gfile.listdir(split_dir)
                  if tf.io.gfile.isdir(os.path.join(split_dir, name)) and not name.startswith("."))


def _list_split(root: str, split: str, class_names: Sequence[str]) -> SplitListing:
    split_dir = os.path.join(root, split)
    image_files, skipped = [], []
    for class_name in class_names:
        class_dir = os.path.join(split_dir, class_name)
        class_images = []
        for name in sorted(tf.io.gfile.listdir(class_dir)):
            path = os.path.join(class_dir, name.rstrip("/"))
            if tf.io.gfile.isdir(path):
                skipped.append((path, "a folder inside a class folder (not read)"))
            elif not has_image_extension(name):
                skipped.append((path, "not an image file name (extension not one of "
                                      f"{', '.join(contract.IMAGE_EXTENSIONS)})"))
            else:
                class_images.append((path, class_name))
        if not class_images:
            raise DataLayoutError(f"class folder {class_dir} holds no image files; "
                                  + expected_layout(root, [split]))
        image_files.extend(class_images)
    return SplitListing(split, tuple(image_files), tuple(skipped))


def scan_layout(root: str, splits: Sequence[str] = contract.SPLITS) -> DataLayout:
    """Lists every file of every split; raises DataLayoutError on a layout that cannot train."""
    if not tf.io.gfile.isdir(root):
        raise DataLayoutError(f"data directory {root} does not exist; " + expected_layout(root, splits))
    class_names_by_split = {}
    for split in splits:
        split_dir = os.path.join(root, split)
        if not tf.io.gfile.isdir(split_dir):
            raise DataLayoutError(f"split folder {split_dir} is missing; " + expected_layout(root, splits))
        names = _class_dirs(split_dir)
        if not names:
            raise DataLayoutError(f"split {split} is empty: {split_dir} has no class folders; "
                                  + expected_layout(root, splits))
        if len(names) == 1:
            raise DataLayoutError(f"split {split} has a single class ({names[0]}): a classifier needs "
                                  f"at least two class folders in {split_dir}")
        class_names_by_split[split] = tuple(names)
    distinct = set(class_names_by_split.values())
    if len(distinct) > 1:
        described = "; ".join(f"{split}: {', '.join(names)}" for split, names in class_names_by_split.items())
        raise DataLayoutError(f"splits disagree on the class folders ({described}); "
                              "every split needs the same classes")
    class_names = distinct.pop()
    return DataLayout(root, class_names,
                      {split: _list_split(root, split, class_names) for split in splits})
