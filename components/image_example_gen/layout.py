"""Reads the folder layout SPLIT/CLASS/FILE and refuses a layout that cannot train.

Runs before any Beam work so that a wrong --data-dir fails at once, with a
message that says what was expected. Every directory entry of a split is
accounted for: an image file to read, a file rejected by its name alone
(not UTF-8, a broken symbolic link), or a skipped entry with the reason.
"""
import dataclasses
import os
from typing import Dict, List, Sequence, Tuple

import tensorflow as tf

from components import contract
from components.image_example_gen.errors import DataLayoutError
from components.image_example_gen.image_checks import has_image_extension

__all__ = ["DataLayout", "DataLayoutError", "SplitListing", "display_path", "expected_layout", "scan_layout"]


@dataclasses.dataclass(frozen=True)
class SplitListing:
    name: str
    image_files: Tuple[Tuple[str, str], ...]  # (path, class name): read and checked by the executor
    rejected: Tuple[Tuple[str, str], ...]  # (display path, reason): image files refused by name or link
    skipped: Tuple[Tuple[str, str], ...]  # (display path, reason): entries that are not images to train on


@dataclasses.dataclass(frozen=True)
class DataLayout:
    root: str
    class_names: Tuple[str, ...]
    splits: Dict[str, SplitListing]


@dataclasses.dataclass(frozen=True)
class _Entry:
    name: str
    path: str
    is_dir: bool
    broken_link_target: str = ""  # set for a symbolic link whose target does not exist
    is_special: bool = False  # a pipe, socket or device: reading it could block forever


def expected_layout(root: str, splits: Sequence[str]) -> str:
    return (f"expected {root}/<split>/<class>/<image> with splits {', '.join(splits)}, "
            f"at least two class folders per split and {'/'.join(contract.IMAGE_EXTENSIONS)} files")


def is_utf8(name: str) -> bool:
    """False for a name that held bytes which are not UTF-8 (os.listdir keeps them as surrogates)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def display_path(path: str) -> str:
    """The path as printable text: bytes that are not UTF-8 shown as \\xNN escapes."""
    return path.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _is_local(path: str) -> bool:
    return "://" not in path


def _entries(directory: str) -> List[_Entry]:
    """The directory's entries, sorted by name. Local folders are read with os.scandir:
    tf.io.gfile fails on a name that is not UTF-8 (UnicodeDecodeError) and cannot
    tell a broken symbolic link from a missing file. Remote file systems (gs://, ...)
    have neither, and are read with tf.io.gfile."""
    if not _is_local(directory):
        return sorted((_Entry(name.rstrip("/"), os.path.join(directory, name.rstrip("/")),
                              tf.io.gfile.isdir(os.path.join(directory, name)))
                       for name in tf.io.gfile.listdir(directory)), key=lambda entry: entry.name)
    entries = []
    try:
        with os.scandir(directory) as scan:
            for item in scan:
                is_dir = item.is_dir()
                broken_target = ""
                if item.is_symlink() and not is_dir and not os.path.exists(item.path):
                    broken_target = os.readlink(item.path)
                is_special = not (is_dir or broken_target or item.is_file())
                entries.append(_Entry(item.name, item.path, is_dir, broken_target, is_special))
    except OSError as error:
        raise DataLayoutError(f"cannot list {display_path(directory)}: {error.strerror}") from error
    return sorted(entries, key=lambda entry: entry.name)


def _class_dirs(split_dir: str) -> List[str]:
    return [entry.name for entry in _entries(split_dir) if entry.is_dir and not entry.name.startswith(".")]


def _split_level_skips(split_dir: str) -> List[Tuple[str, str]]:
    """Entries of the split folder that are not class folders: counted as skipped."""
    skipped = []
    for entry in _entries(split_dir):
        if entry.name.startswith("."):
            kind = "folder" if entry.is_dir else "file"
            skipped.append((display_path(entry.path), f"hidden {kind} (name starts with '.'; not read)"))
        elif not entry.is_dir:
            skipped.append((display_path(entry.path),
                            "not in a class folder: a file directly in the split folder has no class"))
    return skipped


def _classify(entry: _Entry) -> Tuple[str, str]:
    """('image' | 'rejected' | 'skipped', reason) for one entry of a class folder."""
    if entry.name.startswith("."):
        # Includes macOS AppleDouble metadata ('._name.jpg'), which carries an image extension.
        return "skipped", "hidden file (name starts with '.'; e.g. macOS '._' metadata)"
    if entry.is_dir:
        return "skipped", "a folder inside a class folder (not read)"
    if not has_image_extension(entry.name):
        return "skipped", ("not an image file name (extension not one of "
                           f"{', '.join(contract.IMAGE_EXTENSIONS)})")
    if not is_utf8(entry.name):
        # The filename feature, class_names.json, the reports and object stores
        # such as GCS all need text names.
        return "rejected", "file name is not valid UTF-8 (rename the file)"
    if entry.broken_link_target:
        return "rejected", (f"broken symbolic link: its target {display_path(entry.broken_link_target)} "
                            "does not exist")
    if entry.is_special:
        return "rejected", "not a regular file (a pipe, socket or device)"
    return "image", ""


def _list_split(root: str, split: str, class_names: Sequence[str]) -> SplitListing:
    split_dir = os.path.join(root, split)
    image_files, rejected, skipped = [], [], _split_level_skips(split_dir)
    for class_name in class_names:
        class_dir = os.path.join(split_dir, class_name)
        image_named = 0
        for entry in _entries(class_dir):
            verdict, reason = _classify(entry)
            if verdict == "image":
                image_files.append((entry.path, class_name))
            elif verdict == "rejected":
                rejected.append((display_path(entry.path), reason))
            else:
                skipped.append((display_path(entry.path), reason))
            image_named += verdict != "skipped"
        if not image_named:
            raise DataLayoutError(f"class folder {class_dir} holds no image files; "
                                  + expected_layout(root, [split]))
    return SplitListing(split, tuple(image_files), tuple(rejected), tuple(skipped))


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
        not_text = [display_path(name) for name in names if not is_utf8(name)]
        if not_text:
            raise DataLayoutError(f"class folder name(s) {', '.join(not_text)} in {split_dir} are not "
                                  "valid UTF-8; class names become labels and served class strings: "
                                  "rename the folders")
        class_names_by_split[split] = tuple(names)
    distinct = set(class_names_by_split.values())
    if len(distinct) > 1:
        described = "; ".join(f"{split}: {', '.join(names)}" for split, names in class_names_by_split.items())
        raise DataLayoutError(f"splits disagree on the class folders ({described}); "
                              "every split needs the same classes")
    class_names = distinct.pop()
    return DataLayout(root, class_names,
                      {split: _list_split(root, split, class_names) for split in splits})
