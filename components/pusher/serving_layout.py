"""TF Serving's model base path: listing versions, choosing the next one,
publishing, and the serving root's models.config.

TF Serving polls <base>/<name>/ and loads the highest integer-named child that
holds a SavedModel; it ignores other names, so staging folders start with '.'.
A push killed midway leaves its staging folder (or, written in place, a version
folder without saved_model.pb); the next push removes such leftovers once
nothing has been written into them for a while.
"""
import errno
import hashlib
import os
import time
import uuid
from typing import Callable, Dict, List, Optional

import tensorflow as tf
from absl import logging

from components.formats import warmup as warmup_format
from components.formats.versions import (
    ASSETS_EXTRA_DIR,
    SAVED_MODEL_FILE,
    VersionDir,
    latest_complete_version,
    list_versions,
)

WARMUP_FILE = warmup_format.WARMUP_FILE
STAGING_PREFIX = ".staging-"
STAGED, DIRECT = "staged", "direct"
# A partial push untouched this long is a dead push's leftover, not a live one's.
STALE_PARTIAL_PUSH_SECONDS = 3600.0
MODELS_CONFIG_FILE = "models.config"

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
    remove_stale_partial_pushes(model_base)
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

def _newest_write(path: str) -> float:
    """Seconds since the epoch of the last write to path or anything under it
    (object stores have no folder entries: their files' times count)."""
    try:
        newest = tf.io.gfile.stat(path).mtime_nsec
    except tf.errors.NotFoundError:
        newest = 0
    for directory, _, names in tf.io.gfile.walk(path):
        for name in names:
            try:
                newest = max(newest, tf.io.gfile.stat(os.path.join(directory, name)).mtime_nsec)
            except tf.errors.NotFoundError:  # removed meanwhile
                continue
    return newest / 1e9

def remove_stale_partial_pushes(model_base: str, older_than_seconds: float = STALE_PARTIAL_PUSH_SECONDS,
                                now: Callable[[], float] = time.time) -> List[str]:
    """Removes what killed pushes left in model_base: staging folders and
    version folders without saved_model.pb, written to longer ago than
    older_than_seconds (younger ones may be a concurrent push at work).
    Returns the removed paths."""
    if not tf.io.gfile.isdir(model_base):
        return []
    candidates = [os.path.join(model_base, name.rstrip("/")) for name in tf.io.gfile.listdir(model_base)
                  if name.startswith(STAGING_PREFIX)]
    candidates += [version.path for version in list_versions(model_base) if not version.complete]
    removed = []
    for path in candidates:
        try:
            idle = now() - _newest_write(path)
            if idle < older_than_seconds:
                continue
            tf.io.gfile.rmtree(path)
        except tf.errors.NotFoundError:  # another push cleaned it first
            continue
        logging.info("Removed %s, left by an interrupted push %.0f s ago", path, idle)
        removed.append(path)
    return removed

def models_with_versions(serving_root: str) -> List[str]:
    """Names of the model folders under serving_root that hold a complete version."""
    if not tf.io.gfile.isdir(serving_root):
        return []
    names = sorted(name.rstrip("/") for name in tf.io.gfile.listdir(serving_root))
    return [name for name in names
            if not name.startswith(".") and not name.isdigit()
            and tf.io.gfile.isdir(os.path.join(serving_root, name))
            and latest_complete_version(os.path.join(serving_root, name)) is not None]

def models_config_text(serving_root: str, model_names: List[str]) -> str:
    """TF Serving's ModelServerConfig (text proto) serving the latest version of each model."""
    from google.protobuf import text_format  # pylint: disable=import-outside-toplevel
    from tensorflow_serving.config import model_server_config_pb2  # pylint: disable=import-outside-toplevel
    config = model_server_config_pb2.ModelServerConfig()
    config.model_config_list.SetInParent()
    for name in model_names:
        model = config.model_config_list.config.add(
            name=name, base_path=os.path.join(serving_root, name), model_platform="tensorflow")
        model.model_version_policy.latest.num_versions = 1
    return ("# Written by the pipeline's Pusher after every push: the models under this folder\n"
            "# that have a version. tensorflow_model_server --model_config_file=<this file>\n"
            "# opens its ports only once every listed model is loaded, so a model that was\n"
            "# never pushed is not listed.\n" + text_format.MessageToString(config))

def _read_text(path: str) -> Optional[str]:
    try:
        with tf.io.gfile.GFile(path) as file:
            return file.read()
    except tf.errors.NotFoundError:
        return None

def _write_text(path: str, text: str) -> None:
    """Readers see the old or the new file, never a partial one (object stores
    write whole objects; local files go through a rename)."""
    if "://" in path:
        with tf.io.gfile.GFile(path, "w") as file:
            file.write(text)
        return
    partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.{uuid.uuid4().hex}")
    with tf.io.gfile.GFile(partial, "w") as file:
        file.write(text)
    tf.io.gfile.rename(partial, path, overwrite=True)

def write_models_config(serving_root: str, max_attempts: int = 5) -> List[str]:
    """Writes serving_root/models.config listing the models that have a
    version; returns their names. Concurrent pushers each re-list after
    writing until the file matches the folder, so the last one to finish
    leaves every pushed model listed."""
    tf.io.gfile.makedirs(serving_root)
    path = os.path.join(serving_root, MODELS_CONFIG_FILE)
    names: List[str] = []
    for _ in range(max_attempts):
        names = models_with_versions(serving_root)
        text = models_config_text(serving_root, names)
        if _read_text(path) == text:
            break
        _write_text(path, text)
    return names

def _write_removing_on_failure(source_dir, target, extra_files, on_file_written):
    try:
        _write_version(source_dir, target, extra_files, on_file_written)
    except BaseException:
        if tf.io.gfile.exists(target):
            tf.io.gfile.rmtree(target)
        raise
