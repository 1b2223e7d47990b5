"""TF Serving's model base path: listing versions, choosing the next one, publishing.

TF Serving polls <base>/<name>/ and loads the highest integer-named child that
holds a SavedModel; it ignores other names, so staging folders start with '.'.
"""
import dataclasses
import errno
import hashlib
import json
from absl import logging
import os
import time
import uuid
from typing import Callable, Dict, List, Optional

import tensorflow as tf

SAVED_MODEL_FILE = "saved_model.pb"
ASSETS_EXTRA_DIR = "assets.extra"
WARMUP_FILE = os.path.join(ASSETS_EXTRA_DIR, "tf_serving_warmup_requests")
PUSH_INFO_FILE = os.path.join(ASSETS_EXTRA_DIR, "push_info.json")
STAGING_PREFIX = ".staging-"
STAGED, DIRECT = "staged", "direct"

@dataclasses.dataclass(frozen=True)
class VersionDir:
    version: int
    path: str

    @property
    def complete(self) -> bool:
        """A version is published once saved_model.pb exists (it is written last)."""
        return tf.io.gfile.exists(os.path.join(self.path, SAVED_MODEL_FILE))

    def push_info(self) -> Dict:
        """What the Pusher recorded about this version ({} for versions pushed by others)."""
        path = os.path.join(self.path, PUSH_INFO_FILE)
        if not tf.io.gfile.exists(path):
            return {}
        try:
            with tf.io.gfile.GFile(path) as file:
                return json.load(file)
        except (ValueError, tf.errors.OpError) as error:
            logging.warning("Unreadable %s: %s", path, error)
            return {}

def list_versions(model_base: str) -> List[VersionDir]:
    """Integer-named children of a served model's folder, oldest first."""
    if not tf.io.gfile.isdir(model_base):
        return []
    versions = []
    for name in tf.io.gfile.listdir(model_base):
        name = name.rstrip("/")
        if name.isdigit():
            versions.append(VersionDir(int(name), os.path.join(model_base, name)))
    return sorted(versions, key=lambda v: v.version)

def latest_complete_version(model_base: str) -> Optional[VersionDir]:
    complete = [v for v in list_versions(model_base) if v.complete]
    return complete[-1] if complete else None

def next_version(model_base: str, now: Callable[[], float] = time.time) -> int:
    """A Unix-time version, bumped past every existing one (even incomplete ones).

    Seconds keep versions readable and comparable with TFX's stock Pusher; the
    bump keeps them strictly increasing for pushes within the same second or
    under a clock that went backwards.
    """
    existing = [v.version for v in list_versions(model_base)]
    return max([int(now())] + [v + 1 for v in existing])

def _files_under(root: str) -> List[str]:
    """Relative paths of all files under root, sorted."""
    files = []
    for directory, _, names in tf.io.gfile.walk(root):
        for name in names:
            files.append(os.path.relpath(os.path.join(directory, name), root))
    return sorted(files)

def model_digest(saved_model_dir: str) -> str:
    """sha256 over the SavedModel's files (names and bytes), assets.extra excluded.

    assets.extra is what the Pusher adds, so a pushed copy and its source have
    the same digest.
    """
    digest = hashlib.sha256()
    for relative in _files_under(saved_model_dir):
        if relative.split(os.sep)[0] == ASSETS_EXTRA_DIR:
            continue
        digest.update(relative.encode() + b"\0")
        with tf.io.gfile.GFile(os.path.join(saved_model_dir, relative), "rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    return digest.hexdigest()

def default_strategy(model_base: str) -> str:
    """Staged rename where the file system renames folders atomically (local
    disks, mounted volumes); direct writes with saved_model.pb last elsewhere
    (gs://, s3://: no folder rename)."""
    return DIRECT if "://" in model_base else STAGED

def _write_version(source_dir: str, target_dir: str, extra_files: Dict[str, bytes],
                   on_file_written: Callable[[str], None]) -> None:
    """Copies the SavedModel with saved_model.pb last, through a temporary name."""
    relatives = [r for r in _files_under(source_dir) if r != SAVED_MODEL_FILE]
    if not tf.io.gfile.exists(os.path.join(source_dir, SAVED_MODEL_FILE)):
        raise FileNotFoundError(f"{source_dir} holds no {SAVED_MODEL_FILE}: not a SavedModel")
    for relative in relatives:
        destination = os.path.join(target_dir, relative)
        tf.io.gfile.makedirs(os.path.dirname(destination))
        tf.io.gfile.copy(os.path.join(source_dir, relative), destination, overwrite=True)
        on_file_written(relative)
    for relative, content in extra_files.items():
        destination = os.path.join(target_dir, relative)
        tf.io.gfile.makedirs(os.path.dirname(destination))
        with tf.io.gfile.GFile(destination, "wb") as file:
            file.write(content)
        on_file_written(relative)
    partial = os.path.join(target_dir, f".{SAVED_MODEL_FILE}.{uuid.uuid4().hex}")
    tf.io.gfile.copy(os.path.join(source_dir, SAVED_MODEL_FILE), partial, overwrite=True)
    tf.io.gfile.rename(partial, os.path.join(target_dir, SAVED_MODEL_FILE), overwrite=True)
    on_file_written(SAVED_MODEL_FILE)

def publish(source_dir: str, model_base: str, extra_files: Dict[str, bytes],
            strategy: Optional[str] = None, now: Callable[[], float] = time.time,
            on_file_written: Callable[[str], None] = lambda relative: None,
            max_attempts: int = 20) -> VersionDir:
    """Publishes source_dir (+ extra_files) as the next version of model_base.

    Staged: everything goes into a hidden staging folder, which is renamed to
    the version number; rename onto an existing version fails, so concurrent
    pushers take the next number. Direct: the version folder is written in place
    and becomes loadable only when saved_model.pb lands. Either way an
    interrupted push leaves no loadable half-version; a failed push removes
    what it wrote.
    """
    strategy = strategy or default_strategy(model_base)
    if strategy not in (STAGED, DIRECT):
        raise ValueError(f"unknown publish strategy {strategy!r}; use {STAGED!r} or {DIRECT!r}")
    tf.io.gfile.makedirs(model_base)
    for _ in range(max_attempts):
        version = next_version(model_base, now)
        target = os.path.join(model_base, str(version))
        if strategy == DIRECT:
            if tf.io.gfile.exists(target):
                continue
            _write_removing_on_failure(source_dir, target, extra_files, on_file_written)
            return VersionDir(version, target)
        staging = os.path.join(model_base, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex}")
        _write_removing_on_failure(source_dir, staging, extra_files, on_file_written)
        try:
            os.rename(staging, target)
            return VersionDir(version, target)
        except OSError as error:
            tf.io.gfile.rmtree(staging)
            if error.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            logging.info("Version %d was taken by a concurrent push; trying the next one", version)
    raise RuntimeError(f"could not claim a new version under {model_base} in {max_attempts} attempts")

def _write_removing_on_failure(source_dir, target, extra_files, on_file_written):
    try:
        _write_version(source_dir, target, extra_files, on_file_written)
    except BaseException:
        if tf.io.gfile.exists(target):
            tf.io.gfile.rmtree(target)
        raise
