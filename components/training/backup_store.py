"""Where a Trainer keeps the state it resumes from, and how it is written so that
a kill at any moment leaves the last complete save readable.

The folder is `<Trainer's folder>/resume/<key>`, the Trainer's folder being the
parent of the model_run artifact's parent:

- TFX's local runners: model_run is `<pipeline_root>/Trainer_<model>/model_run/<execution id>`;
  a re-run gets a new execution id, so the backup must live above it.
- KFP v2: model_run is `<pipeline root>/<pipeline name>/<run id>/Trainer_<model>/<uuid>/model_run`
  (kubeflow/pipelines backend/src/v2/driver: GenerateOutputURI); the driver provisions
  output URIs once, before any attempt, so a retried task gets the same
  (backend/src/v2/component/launcher_v2.go, the comment of qualifyExecutorLogsURI),
  while a new run has a new run id and starts fresh.

The key hashes what makes a state valid to go on from (the examples, the Transform
graph, the Trainer module, every hyper-parameter): new data or a changed setting
starts fresh instead of resuming someone else's training.

Each save is a folder `epoch-<epochs done>` holding the arrays and, written last,
state.json; a folder without a readable state.json is an interrupted save and is
skipped. Older saves are deleted only after a newer one is complete. tf.io.gfile
throughout, so the same code works on gs://.
"""
import hashlib
import io
import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np
import tensorflow as tf
from absl import logging

BACKUP_DIR = "resume"
"""In the Trainer's folder: one sub-folder per key."""
SAVE_PREFIX = "epoch-"
STATE_FILE = "state.json"
WEIGHTS_FILE = "weights.npz"
OPTIMIZER_FILE = "optimizer.npz"
BEST_WEIGHTS_PREFIX = "best-"
"""Copies of the best-so-far weights (beside the saves: written only when they change)."""
STATE_FORMAT = 1


def trainer_folder(model_run_dir: str) -> str:
    """The Trainer's own folder under the pipeline root (see the module docstring)."""
    return os.path.dirname(os.path.dirname(model_run_dir.rstrip("/")))


def backup_key(train_files: Sequence[str], eval_files: Sequence[str], transform_output: str,
               trainer_module: str, hparams: Dict) -> str:
    """Hash of everything that makes a saved state valid to resume."""
    identity = {"train_files": list(train_files), "eval_files": list(eval_files),
                "transform_output": transform_output, "trainer_module": trainer_module, "hparams": hparams}
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:16]


def backup_folder(fn_args, trainer_module: str, hparams: Dict) -> str:
    key = backup_key(fn_args.train_files, fn_args.eval_files, fn_args.transform_output, trainer_module, hparams)
    return os.path.join(trainer_folder(fn_args.model_run_dir), BACKUP_DIR, key)


def _write_arrays(path: str, arrays: List[np.ndarray]):
    buffer = io.BytesIO()
    np.savez(buffer, *arrays)
    with tf.io.gfile.GFile(path, "wb") as f:
        f.write(buffer.getvalue())


def read_arrays(path: str) -> List[np.ndarray]:
    with tf.io.gfile.GFile(path, "rb") as f:
        stored = np.load(io.BytesIO(f.read()), allow_pickle=False)
        return [stored[f"arr_{index}"] for index in range(len(stored.files))]


def _save_folders(folder: str) -> List[str]:
    """Save folders, newest (most epochs done) first."""
    if not tf.io.gfile.isdir(folder):
        return []
    names = [name.rstrip("/") for name in tf.io.gfile.listdir(folder)]
    return sorted((name for name in names if name.startswith(SAVE_PREFIX)), reverse=True)


class BackupStore:
    """The save folders of one key."""

    def __init__(self, folder: str):
        self.folder = folder

    def latest(self) -> Optional[Dict]:
        """The newest complete save's state (with `save`: its folder), None if there is none."""
        for name in _save_folders(self.folder):
            path = os.path.join(self.folder, name)
            try:
                with tf.io.gfile.GFile(os.path.join(path, STATE_FILE)) as f:
                    state = json.load(f)
            except (tf.errors.NotFoundError, json.JSONDecodeError):
                logging.warning("Skipping the interrupted training backup %s", path)
                continue
            if state.get("format") != STATE_FORMAT:
                raise ValueError(f"training backup {path} has format {state.get('format')!r}, this Trainer "
                                 f"reads {STATE_FORMAT}: delete {self.folder} to train from the start")
            return dict(state, save=path)
        return None

    def weights(self, save: str) -> List[np.ndarray]:
        return read_arrays(os.path.join(save, WEIGHTS_FILE))

    def optimizer_variables(self, save: str) -> List[np.ndarray]:
        return read_arrays(os.path.join(save, OPTIMIZER_FILE))

    def best_weights_path(self, name: str) -> str:
        return os.path.join(self.folder, name)

    def keep_best_weights(self, source: str, epochs_done: int) -> str:
        """Copies the best-so-far weights file in; returns the copy's name for the state."""
        name = f"{BEST_WEIGHTS_PREFIX}{epochs_done:05d}.weights.h5"
        tf.io.gfile.makedirs(self.folder)
        tf.io.gfile.copy(source, self.best_weights_path(name), overwrite=True)
        return name

    def save(self, epochs_done: int, state: Dict, weights: List[np.ndarray],
             optimizer_variables: List[np.ndarray]) -> str:
        """Writes a complete save, then deletes everything it supersedes."""
        path = os.path.join(self.folder, f"{SAVE_PREFIX}{epochs_done:05d}")
        if tf.io.gfile.exists(path):  # an interrupted save of the same epoch
            tf.io.gfile.rmtree(path)
        tf.io.gfile.makedirs(path)
        _write_arrays(os.path.join(path, WEIGHTS_FILE), weights)
        _write_arrays(os.path.join(path, OPTIMIZER_FILE), optimizer_variables)
        state_path = os.path.join(path, STATE_FILE)
        with tf.io.gfile.GFile(state_path + ".tmp", "w") as f:
            json.dump(dict(state, format=STATE_FORMAT), f)
        tf.io.gfile.rename(state_path + ".tmp", state_path, overwrite=True)
        self._delete_superseded(keep_save=os.path.basename(path), keep_best=(state.get("best_weights") or {})
                                .get("file"))
        return path

    def _delete_superseded(self, keep_save: str, keep_best: Optional[str]):
        for name in tf.io.gfile.listdir(self.folder):
            name = name.rstrip("/")
            if name.startswith(SAVE_PREFIX) and name != keep_save:
                tf.io.gfile.rmtree(os.path.join(self.folder, name))
            elif name.startswith(BEST_WEIGHTS_PREFIX) and name != keep_best:
                tf.io.gfile.remove(os.path.join(self.folder, name))

    def size_bytes(self) -> int:
        return sum(tf.io.gfile.stat(os.path.join(root, name)).length
                   for root, _, files in tf.io.gfile.walk(self.folder) for name in files)

    def delete(self):
        """Deletes this key's folder, and the backup folder when nothing else is left in it."""
        if tf.io.gfile.exists(self.folder):
            tf.io.gfile.rmtree(self.folder)
        parent = os.path.dirname(self.folder)
        others = tf.io.gfile.listdir(parent) if tf.io.gfile.isdir(parent) else []
        if others:
            logging.warning("Training backups of other runs (other inputs or settings, never finished) remain "
                            "in %s: %s; delete them once no run will resume them", parent,
                            ", ".join(sorted(name.rstrip("/") for name in others)))
        elif tf.io.gfile.isdir(parent):
            tf.io.gfile.rmtree(parent)
