"""A Trainer's run_fn in a child process that can stop at a chosen batch, for tests
that SIGKILL it there.

    python -m tests.trainer_process SPEC.json

SPEC: {"run_fn": "components.models.scratch.trainer.run_fn", "fn_args": {FnArgs fields},
"pause": {"fit_call": 1, "epoch": 2, "marker": PATH}}. With "pause", the child stops
after the first batch of that (0-based) epoch of the fit_call-th Model.fit: the
Trainer has saved the epochs before it, and its optimizer has taken one more step.
It writes MARKER (JSON: the optimizer's iteration count there) and waits to be killed.
"""
import importlib
import itertools
import json
import os
import signal
import subprocess
import sys
import time
from typing import Dict

import keras

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class PauseAt(keras.callbacks.Callback):
    def __init__(self, epoch: int, marker: str):
        super().__init__()
        self.pause_epoch, self.marker, self.epoch = epoch, marker, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch != self.pause_epoch or batch != 0:
            return
        with open(self.marker + ".tmp", "w") as f:
            json.dump({"optimizer_iterations": int(self.model.optimizer.iterations.numpy())}, f)
        os.rename(self.marker + ".tmp", self.marker)
        while True:
            signal.pause()


def pause_in_fit(fit_call: int, epoch: int, marker: str):
    """Adds PauseAt to the callbacks of the fit_call-th Model.fit of this process."""
    original_fit = keras.Model.fit
    calls = itertools.count(1)

    def fit(self, *args, callbacks=None, **kwargs):
        if next(calls) == fit_call:
            callbacks = list(callbacks or []) + [PauseAt(epoch, marker)]
        return original_fit(self, *args, callbacks=callbacks, **kwargs)

    keras.Model.fit = fit


def start(spec: Dict, spec_path: str, log_path: str) -> subprocess.Popen:
    with open(spec_path, "w") as f:
        json.dump(spec, f)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [REPO_ROOT, os.environ.get("PYTHONPATH")])))
    with open(log_path, "w") as log:
        return subprocess.Popen([sys.executable, "-m", "tests.trainer_process", spec_path], cwd=REPO_ROOT, env=env,
                                stdout=log, stderr=subprocess.STDOUT)


def wait_for_marker(process: subprocess.Popen, marker: str, log_path: str, timeout_s: float = 300) -> Dict:
    """Polls for the child's marker; fails with its log if it exits or takes too long."""
    deadline = time.monotonic() + timeout_s
    while not os.path.exists(marker):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            with open(log_path) as f:
                raise AssertionError(f"the Trainer child never paused (exit code {process.poll()}):\n"
                                     f"{f.read()[-5000:]}")
        time.sleep(0.2)
    with open(marker) as f:
        return json.load(f)


def main(spec_path: str):
    from tfx.components.trainer.fn_args_utils import FnArgs
    with open(spec_path) as f:
        spec = json.load(f)
    if spec.get("pause"):
        pause_in_fit(**spec["pause"])
    module_name, function = spec["run_fn"].rsplit(".", 1)
    getattr(importlib.import_module(module_name), function)(FnArgs(**spec["fn_args"]))


if __name__ == "__main__":
    main(sys.argv[1])
