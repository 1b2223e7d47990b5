"""Resumable training: a Trainer killed at any point (a preempted pod, a crashed
laptop) goes on from its last finished epoch when it runs again.

After every epoch the Trainer saves, in the folder backup_store describes: the whole
model's weights, the optimizer's variables (its iteration count and learning rate
among them), the phase and the epochs done in each phase, the state of the
callbacks that steer training (ReduceLROnPlateau, EarlyStopping, the best-weights
ModelCheckpoint), a copy of the best-so-far weights, the time-budget time used and
the history of every finished epoch. A run that finds a save says so in one
progress line, restores it and fits only the remaining epochs; the backup is
deleted once the model is exported.

Keras' own BackupAndRestore keeps weights, optimizer and epoch of one fit() call
only: not the other callbacks' state, not the history, not a phase sequence, and
it deletes its backup when each fit() ends.

What a resumed run cannot replay: the data order and augmentation draws of the
redone epoch (the input pipeline restarts from its seed), and TensorBoard events
of epochs before the resume on a local re-run (they stay in the killed run's
model_run artifact).
"""
import os
import time
from typing import Callable, Dict, List, Optional, Sequence

import keras
import numpy as np
import tensorflow as tf
from absl import logging

from components.training import backup_store

RESUMABLE_CALLBACK_STATE = {
    keras.callbacks.ReduceLROnPlateau: ("wait", "best", "cooldown_counter"),
    keras.callbacks.EarlyStopping: ("wait", "best", "best_epoch", "stopped_epoch"),
    keras.callbacks.ModelCheckpoint: ("best",),
    # Whether the model holds the averaged weights (it does at every save): a resumed run
    # must swap the raw ones back in before its first step.
    keras.callbacks.SwapEMAWeights: ("_ema_weights_in_model",),
}
"""The attributes that carry each steering callback's state from epoch to epoch
(keras/src/callbacks: what their on_train_begin resets)."""


def _plain(value):
    """A JSON-able copy of a callback attribute (numpy scalars become Python numbers)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    return float(value)


def callback_state(callback: keras.callbacks.Callback) -> Dict:
    for kind, attributes in RESUMABLE_CALLBACK_STATE.items():
        if isinstance(callback, kind):
            return {"class": type(callback).__name__,
                    "state": {name: _plain(getattr(callback, name, None)) for name in attributes}}
    raise TypeError(f"no resumable state known for {type(callback).__name__}; "
                    f"known: {[kind.__name__ for kind in RESUMABLE_CALLBACK_STATE]}")


def restore_callback_state(callback: keras.callbacks.Callback, saved: Dict):
    if saved["class"] != type(callback).__name__:
        raise ValueError(f"the training backup holds {saved['class']} state where this Trainer has "
                         f"{type(callback).__name__}")
    for name, value in saved["state"].items():
        setattr(callback, name, value)


class TrainingBackup:
    """One Trainer run's backup: the state a killed attempt saved, restored phase by
    phase (TrainingBackup.phase), and the saving."""

    def __init__(self, folder: str, component: str):
        self.store = backup_store.BackupStore(folder)
        self.component = component
        saved = self.store.latest()
        self.saved = saved
        self.state = {"phases": {}, "current": None, "callbacks": [], "best_weights": None, "resumes": [],
                      "elapsed_seconds": 0.0}
        if saved is not None:
            self.state.update({key: saved[key] for key in self.state})
            current = saved["phases"][saved["current"]]
            self.resume = {"from": saved["save"], "phase": saved["current"], "epochs_done": current["epochs_done"],
                           "epochs": current["epochs"], "elapsed_seconds": saved["elapsed_seconds"]}
            self.state["resumes"].append(self.resume)
            logging.info("%s: resuming from %s: epoch %d of %d done (phase %s)", component, saved["save"],
                         current["epochs_done"], current["epochs"], saved["current"])
        else:
            self.resume = None
            logging.info("%s: training state saved after every epoch to %s", component, folder)
        self.clock_start = time.time() - self.state["elapsed_seconds"]
        """time.time() at which training started, counting the time killed attempts had used."""

    @classmethod
    def for_run(cls, fn_args, trainer_module: str, hparams: Dict) -> "TrainingBackup":
        folder = backup_store.backup_folder(fn_args, trainer_module, hparams)
        return cls(folder, component=os.path.basename(backup_store.trainer_folder(fn_args.model_run_dir)))

    @property
    def resumes(self) -> List[Dict]:
        """Every resume of this training so far (the training report records them)."""
        return self.state["resumes"]

    def phase(self, name: str, epochs: int, model: keras.Model, tracked: Sequence[keras.callbacks.Callback] = (),
              best_weights: Optional[keras.callbacks.ModelCheckpoint] = None) -> "PhaseBackup":
        """`model`: the whole model, saved and restored (the fitted one may be a part sharing its layers);
        `tracked`: the callbacks whose state is saved; `best_weights`: the callback writing the
        best-so-far weights, which are kept in the backup too."""
        return PhaseBackup(self, name, epochs, model, list(tracked), best_weights)

    def restore_weights(self, model: keras.Model) -> bool:
        """Sets the whole model's weights to the saved ones, if there is a save."""
        if self.saved is None:
            return False
        try:
            model.set_weights(self.store.weights(self.saved["save"]))
        except ValueError as error:
            raise ValueError(f"the training backup {self.saved['save']} does not fit {model.name} ({error}); "
                             f"delete {self.store.folder} to train from the start") from error
        return True

    def finish(self):
        """The model is exported: the backup is no longer needed."""
        self.store.delete()


class PhaseBackup:
    """One fit() of a Trainer: whatever the saved state says about it, and its saving callback."""

    def __init__(self, backup: TrainingBackup, name: str, epochs: int, model: keras.Model,
                 tracked: List[keras.callbacks.Callback], best_weights: Optional[keras.callbacks.ModelCheckpoint]):
        self.backup, self.name, self.epochs, self.model = backup, name, epochs, model
        self.tracked, self.best_weights = tracked, best_weights
        saved = backup.state["phases"].get(name)
        self.history: Dict[str, List[float]] = {k: list(v) for k, v in (saved or {}).get("history", {}).items()}
        self.epochs_done = saved["epochs_done"] if saved else 0
        self.finished = bool(saved and saved["finished"])
        self.restores = backup.saved is not None and backup.saved["current"] == name
        """The saved weights were taken in this phase: restore them when it starts."""

    def run(self, fit: Callable[[int, keras.callbacks.Callback], object]) -> Dict[str, List[float]]:
        """Calls fit(initial_epoch, backup callback) unless the phase is finished; returns
        the phase's history, every epoch once (saved epochs, then this run's)."""
        if self.finished:
            logging.info("%s: phase %s finished before the resume (%d epochs)", self.backup.component,
                         self.name, self.epochs_done)
            if self.restores:
                self._restore_model_files()
        else:
            fit(self.epochs_done, BackupCallback(self))
        return self.history

    def _restore_model_files(self):
        """The weights, and the best-so-far weights file of the saved epoch (a killed attempt
        may have written a newer one after its last save)."""
        saved = self.backup.saved
        self.backup.restore_weights(self.model)
        if self.best_weights is None:
            return
        kept = saved["best_weights"]
        if kept is not None:
            tf.io.gfile.copy(self.backup.store.best_weights_path(kept["file"]), self.best_weights.filepath,
                             overwrite=True)
        elif tf.io.gfile.exists(self.best_weights.filepath):
            tf.io.gfile.remove(self.best_weights.filepath)

    def restore(self, fitted: keras.Model):
        """Everything the saved epoch had: weights, optimizer, steering callbacks."""
        saved = self.backup.saved
        self._restore_model_files()
        optimizer = fitted.optimizer
        if not optimizer.built:
            optimizer.build(fitted.trainable_variables)
        values = self.backup.store.optimizer_variables(saved["save"])
        shapes = [tuple(v.shape) for v in optimizer.variables]
        if shapes != [value.shape for value in values]:
            raise ValueError(f"the training backup {saved['save']} holds optimizer variables of shapes "
                             f"{[value.shape for value in values]}, this Trainer's are {shapes}; "
                             f"delete {self.backup.store.folder} to train from the start")
        for variable, value in zip(optimizer.variables, values, strict=True):
            variable.assign(value)
        for callback, state in zip(self.tracked, saved["callbacks"], strict=True):
            restore_callback_state(callback, state)
        self.backup.resume.update({
            "optimizer_iterations": int(np.asarray(optimizer.iterations)),
            "learning_rate": float(np.asarray(optimizer.learning_rate)),
            "callbacks": [callback_state(callback) for callback in self.tracked]})
        logging.info("%s: restored the optimizer (iteration %d, learning rate %.3g) and %d callbacks' state",
                     self.backup.component, self.backup.resume["optimizer_iterations"],
                     self.backup.resume["learning_rate"], len(self.tracked))

    def save(self, fitted: keras.Model, epoch: int, logs: Dict):
        started = time.time()
        for key, value in logs.items():
            self.history.setdefault(key, []).append(float(value))
        self.epochs_done = epoch + 1
        state = self.backup.state
        state["phases"][self.name] = {"epochs": self.epochs, "epochs_done": self.epochs_done,
                                      "finished": bool(fitted.stop_training) or self.epochs_done >= self.epochs,
                                      "history": self.history}
        state["current"] = self.name
        state["elapsed_seconds"] = time.time() - self.backup.clock_start
        state["callbacks"] = [callback_state(callback) for callback in self.tracked]
        epochs_done = sum(phase["epochs_done"] for phase in state["phases"].values())
        self._keep_best_weights(epochs_done)
        path = self.backup.store.save(epochs_done, state, self.model.get_weights(),
                                      [np.asarray(v) for v in fitted.optimizer.variables])
        logging.debug("Training state saved to %s in %.2f s", path, time.time() - started)

    def _keep_best_weights(self, epochs_done: int):
        """A copy of the best-so-far weights whenever the checkpoint callback found a new best."""
        if self.best_weights is None or not tf.io.gfile.exists(self.best_weights.filepath):
            return
        kept = self.backup.state["best_weights"]
        best = _plain(self.best_weights.best)
        if kept is None or kept["value"] != best:
            name = self.backup.store.keep_best_weights(self.best_weights.filepath, epochs_done)
            self.backup.state["best_weights"] = {"file": name, "value": best}


class BackupCallback(keras.callbacks.Callback):
    """Restores the saved state when fit() starts, saves after every epoch. Goes last
    in the callback list: the other callbacks have then reset (on_train_begin) and
    updated (on_epoch_end) the state it restores and saves."""

    def __init__(self, phase: PhaseBackup):
        super().__init__()
        self.phase = phase

    def on_train_begin(self, logs=None):
        if self.phase.restores:
            self.phase.restore(self.model)

    def on_epoch_end(self, epoch, logs=None):
        self.phase.save(self.model, epoch, logs or {})
