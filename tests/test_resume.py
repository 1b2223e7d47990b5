"""Trainers killed mid-training go on from their last finished epoch when run again.

A Trainer's run_fn runs in a child process on real examples and Transform output,
stops after the first batch of a later epoch (its optimizer one step past the last
save) and is SIGKILLed there; then run_fn runs again, as TFX would: a local re-run
with new output URIs (the scratch convnet) or a KFP retry with the same ones
(VGG16, killed in fine-tuning). What is asserted holds whatever the models learn.
"""
import glob
import json
import logging
import os

import keras
import numpy as np
import pytest
import tensorflow as tf
from tfx.components.trainer.fn_args_utils import FnArgs

from benchmarks import trainer_inputs
from components import contract
from components.models.mnist import trainer as mnist
from components.models.scratch import trainer as scratch
from components.models.scratch.network import build_scratch_model
from components.models.vgg16 import trainer as vgg16
from components.models.vgg16.hparams import WEIGHTS_NONE
from components.training import backup_store, common
from components.training.resume import TrainingBackup
from pipeline import model_registry
from tests import trainer_process
from tests.image_files import SAMPLE_DIR

SCRATCH_HPARAMS = {
    "epochs": 4, "steps_per_epoch": 2, "batch_size": 4, "seed": 1, "precision": "float32",
    # Steps far too small to move the validation loss by ReduceLROnPlateau's min_delta (1e-4):
    # every epoch after the first is a plateau, so the schedule's state is known by construction.
    "learning_rate": 1e-12, "min_learning_rate": 1e-15, "reduce_lr_patience": 2,
    "early_stopping_patience": 10,
}
VGG16_HPARAMS = {"weights": WEIGHTS_NONE, "feature_extraction": "fast", "feature_extraction_epochs": 1,
                 "fine_tune_epochs": 3, "fine_tune_augment": False, "batch_size": 4, "seed": 1,
                 "precision": "float32"}


@pytest.fixture
def progress_log(caplog):
    """The Trainers' INFO lines, as run-local shows them (absl at INFO)."""
    from absl import logging as absl_logging
    verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    caplog.set_level(logging.INFO)
    yield caplog
    absl_logging.set_verbosity(verbosity)


def tfx_fn_args(examples: str, transform: str, pipeline_root: str, component: str, execution_id: int,
                custom_config: dict) -> FnArgs:
    """What TFX's Trainer executor hands run_fn in a local run: each output artifact at
    <pipeline_root>/<component>/<output key>/<execution id>."""
    base = trainer_inputs.fn_args(examples, transform, pipeline_root, custom_config)
    trainer = os.path.join(pipeline_root, component)
    return FnArgs(train_files=base.train_files, eval_files=base.eval_files, transform_output=transform,
                  transform_graph_path=transform, custom_config=custom_config,
                  model_run_dir=os.path.join(trainer, "model_run", str(execution_id)),
                  serving_model_dir=os.path.join(trainer, "model", str(execution_id), "Format-Serving"),
                  working_dir=os.path.join(trainer, "model_run", str(execution_id)))


def kill_during_epoch(tmp_path, fn_args: FnArgs, fit_call: int, epoch: int) -> dict:
    """Runs the Trainer of fn_args' component in a child, SIGKILLs it after the first batch
    of `epoch` of its fit_call-th fit; returns the child's optimizer iteration count there."""
    model = os.path.basename(backup_store.trainer_folder(fn_args.model_run_dir)).split("_", 1)[1]
    marker = str(tmp_path / "paused.json")
    fields = {name: getattr(fn_args, name) for name in (
        "train_files", "eval_files", "transform_output", "transform_graph_path", "serving_model_dir",
        "model_run_dir", "working_dir", "custom_config")}
    spec = {"run_fn": model_registry.get(model).run_fn, "fn_args": fields,
            "pause": {"fit_call": fit_call, "epoch": epoch, "marker": marker}}
    log = str(tmp_path / "child.log")
    child = trainer_process.start(spec, str(tmp_path / "spec.json"), log)
    paused = trainer_process.wait_for_marker(child, marker, log)
    child.kill()
    assert child.wait() == -9
    return paused


def killed_trainer(pipeline_inputs, tmp_path, component: str, hparams: dict, fit_call: int, epoch: int):
    """A Trainer killed mid-epoch in a TFX layout under tmp_path: (its fn_args, the child's
    state at the kill, the backup it left)."""
    examples, transform = pipeline_inputs
    fn_args = tfx_fn_args(examples, transform, str(tmp_path / "pipeline_root"), component, 5, hparams)
    paused = kill_during_epoch(tmp_path, fn_args, fit_call=fit_call, epoch=epoch)
    return fn_args, paused, read_backup(fn_args)


def read_backup(fn_args: FnArgs) -> dict:
    """The one complete save a killed Trainer left, read without the Trainer's code."""
    saves = glob.glob(os.path.join(backup_store.trainer_folder(fn_args.model_run_dir), backup_store.BACKUP_DIR,
                                   "*", backup_store.SAVE_PREFIX + "*", backup_store.STATE_FILE))
    assert len(saves) == 1, saves
    save = os.path.dirname(saves[0])
    with open(saves[0]) as f:
        state = json.load(f)
    optimizer = np.load(os.path.join(save, backup_store.OPTIMIZER_FILE))
    # Keras optimizers create their iteration count, then the learning rate, first.
    return {"save": save, "state": state, "iterations": int(optimizer["arr_0"]),
            "learning_rate": float(optimizer["arr_1"])}


def training_report(fn_args: FnArgs) -> dict:
    with open(os.path.join(fn_args.model_run_dir, contract.TRAINING_REPORT_DIR, "history.json")) as f:
        return json.load(f)


def assert_serves_jpeg_bytes(serving_model_dir: str):
    """The checks an uninterrupted run's export passes (tests/test_training.py)."""
    files = sorted(glob.glob(os.path.join(SAMPLE_DIR, contract.TEST_SPLIT, "*", "*.jpg")))[:3]
    served = tf.saved_model.load(serving_model_dir)
    outputs = served.signatures[contract.SERVING_SIGNATURE](
        **{contract.SERVING_INPUT_KEY: tf.constant([open(f, "rb").read() for f in files])})
    probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
    assert probabilities.shape == (len(files), 2) and probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_array_equal(outputs[contract.CLASS_IDS_KEY].numpy(), probabilities.argmax(axis=1))
    examples = [trainer_inputs.make_example(open(f, "rb").read(), 0, f).SerializeToString() for f in files]
    by_example = served.signatures[contract.EXAMPLES_SIGNATURE](**{contract.EXAMPLES_INPUT_KEY: tf.constant(examples)})
    np.testing.assert_allclose(by_example[contract.PROBABILITIES_KEY].numpy(), probabilities, rtol=1e-5)


def test_scratch_convnet_killed_mid_epoch_resumes_on_a_local_re_run(pipeline_inputs, tmp_path, progress_log):
    _, paused, backup = killed_trainer(pipeline_inputs, tmp_path, "Trainer_scratch", SCRATCH_HPARAMS,
                                       fit_call=1, epoch=2)
    state = backup["state"]
    assert state["current"] == scratch.PHASE and state["phases"][scratch.PHASE]["epochs_done"] == 2
    assert backup["iterations"] == 2 * SCRATCH_HPARAMS["steps_per_epoch"] < paused["optimizer_iterations"]
    plateau = state["callbacks"][0]
    assert plateau["class"] == "ReduceLROnPlateau" and plateau["state"]["wait"] == 1  # epoch 2: a plateau
    best_copy = os.path.join(os.path.dirname(backup["save"]), state["best_weights"]["file"])
    best = build_scratch_model()
    best.load_weights(best_copy)

    rerun = tfx_fn_args(*pipeline_inputs, str(tmp_path / "pipeline_root"), "Trainer_scratch", 6, SCRATCH_HPARAMS)
    scratch.run_fn(rerun)

    assert (f"Trainer_scratch: resuming from {backup['save']}: epoch 2 of 4 done (phase scratch)"
            in progress_log.messages)
    report = training_report(rerun)
    (resume,) = report["resumes"]
    assert resume["from"] == backup["save"] and resume["epochs_done"] == 2
    assert resume["optimizer_iterations"] == backup["iterations"]
    assert resume["learning_rate"] == pytest.approx(backup["learning_rate"], rel=1e-6)
    assert resume["callbacks"] == state["callbacks"]
    history = report["history"]
    saved_history = state["phases"][scratch.PHASE]["history"]
    assert {key: len(values) for key, values in history.items()} == {key: 4 for key in saved_history}
    assert {key: values[:2] for key, values in history.items()} == saved_history
    # The restored plateau count (1) reaches the patience (2) at epoch 3; a fresh one would not.
    learning_rate = SCRATCH_HPARAMS["learning_rate"]
    np.testing.assert_allclose(history["learning_rate"], [learning_rate] * 3 + [learning_rate / 2], rtol=1e-6)

    exported = keras.models.load_model(os.path.join(rerun.serving_model_dir, contract.KERAS_MODEL_PATH))
    assert report["kept_epoch"] == int(np.argmax(history["val_accuracy"])) + 1
    # The kept epoch's weights file (saved before the kill) carries that epoch's optimizer too.
    assert int(exported.optimizer.iterations.numpy()) == report["kept_epoch"] * SCRATCH_HPARAMS["steps_per_epoch"]
    for saved, served in zip(best.get_weights(), exported.get_weights(), strict=True):
        np.testing.assert_array_equal(saved, served)
    assert_serves_jpeg_bytes(rerun.serving_model_dir)
    assert not os.path.exists(os.path.join(backup_store.trainer_folder(rerun.model_run_dir), backup_store.BACKUP_DIR))


def test_vgg16_killed_in_fine_tuning_resumes_on_a_retry(pipeline_inputs, tmp_path, progress_log):
    fn_args, paused, backup = killed_trainer(pipeline_inputs, tmp_path, "Trainer_vgg16", VGG16_HPARAMS,
                                             fit_call=2, epoch=2)
    state = backup["state"]
    extraction, fine_tuning = "feature extraction (fast)", "fine-tuning (cached frozen layers)"
    assert list(state["phases"]) == [extraction, fine_tuning] and state["current"] == fine_tuning
    assert state["phases"][extraction]["finished"] and state["phases"][fine_tuning]["epochs_done"] == 2
    steps = -(-2 * 6 // VGG16_HPARAMS["batch_size"])  # 12 training images
    assert backup["iterations"] == 2 * steps < paused["optimizer_iterations"]

    vgg16.run_fn(fn_args)  # a retried KFP task: the same output URIs

    assert (f"Trainer_vgg16: resuming from {backup['save']}: epoch 2 of 3 done (phase {fine_tuning})"
            in progress_log.messages)
    report = training_report(fn_args)
    (resume,) = report["resumes"]
    assert (resume["phase"], resume["epochs_done"]) == (fine_tuning, 2)
    assert resume["optimizer_iterations"] == backup["iterations"]
    assert resume["learning_rate"] == pytest.approx(backup["learning_rate"], rel=1e-6)
    assert resume["elapsed_seconds"] == state["elapsed_seconds"]
    history = report["history"]
    assert len(history["loss"]) == 1 + 3 and report["phase_starts"] == {extraction: 1, fine_tuning: 2}
    saved_epochs = common.concat_histories(*[phase["history"] for phase in state["phases"].values()])
    assert {key: values[:3] for key, values in history.items()} == saved_epochs
    assert_serves_jpeg_bytes(fn_args.serving_model_dir)
    assert not os.path.exists(os.path.join(backup_store.trainer_folder(fn_args.model_run_dir), backup_store.BACKUP_DIR))


class CrashAt(keras.callbacks.Callback):
    """An exception (an out-of-memory error, a lost file system) after the first batch of an epoch."""

    def __init__(self, epoch: int):
        super().__init__()
        self.crash_epoch, self.epoch = epoch, None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.crash_epoch:
            raise RuntimeError("crash")


def test_mnist_convnet_resumes_after_a_crash(pipeline_inputs, tmp_path, monkeypatch, progress_log):
    from components.image_shape import MNIST_IMAGE_SHAPE
    examples, _ = pipeline_inputs
    first = trainer_inputs.image_files(SAMPLE_DIR, contract.TRAIN_SPLIT, 1)["cats"][0]
    transform = trainer_inputs.build_transform_graph(first, str(tmp_path / "transform"),
                                                     MNIST_IMAGE_SHAPE.as_custom_config())
    hparams = {"epochs": 3, "batch_size": 4, "steps_per_epoch": 2, "seed": 0, "precision": "float32"}
    fn_args = tfx_fn_args(examples, transform, str(tmp_path / "root"), "Trainer_mnist", 1, hparams)
    original_fit = keras.Model.fit
    monkeypatch.setattr(keras.Model, "fit", lambda self, *a, callbacks=(), **k: original_fit(
        self, *a, callbacks=list(callbacks) + [CrashAt(1)], **k))
    with pytest.raises(RuntimeError, match="crash"):
        mnist.run_fn(fn_args)
    monkeypatch.setattr(keras.Model, "fit", original_fit)
    backup = read_backup(fn_args)

    rerun = tfx_fn_args(examples, transform, str(tmp_path / "root"), "Trainer_mnist", 2, hparams)
    mnist.run_fn(rerun)

    assert f"Trainer_mnist: resuming from {backup['save']}: epoch 1 of 3 done (phase mnist)" in progress_log.messages
    report = training_report(rerun)
    assert report["resumes"][0]["optimizer_iterations"] == backup["iterations"] == 2
    assert len(report["history"]["loss"]) == 3
    assert report["history"]["loss"][:1] == backup["state"]["phases"]["mnist"]["history"]["loss"]


def tiny_backup(tmp_path, trainer_module: str, hparams: dict) -> TrainingBackup:
    """A Trainer's backup for a run in a TFX-like layout under tmp_path (component Trainer_tiny)."""
    fn_args = FnArgs(train_files=["examples/Split-train/*"], eval_files=["examples/Split-eval/*"],
                     transform_output="transform", model_run_dir=str(tmp_path / "Trainer_tiny" / "model_run" / "1"))
    return TrainingBackup.for_run(fn_args, trainer_module, hparams)


def tiny_training(tmp_path, hparams: dict, epochs: int) -> TrainingBackup:
    """A two-weight model fitted with a Trainer's backup callback, on a TFX-like layout."""
    backup = tiny_backup(tmp_path, "tests.tiny", hparams)
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.RMSprop(1e-3), loss="mse")
    x = np.arange(8, dtype=np.float32).reshape(-1, 1)
    backup.phase("tiny", epochs, model).run(lambda initial_epoch, callback: model.fit(
        x, x, epochs=epochs, initial_epoch=initial_epoch, batch_size=4, callbacks=[callback], verbose=0))
    return backup


def test_a_changed_hyper_parameter_starts_fresh(tmp_path):
    first = tiny_training(tmp_path, {"epochs": 2, "learning_rate": 1e-3}, epochs=2)
    assert first.resume is None
    changed = tiny_training(tmp_path, {"epochs": 2, "learning_rate": 2e-3}, epochs=2)
    assert changed.resume is None and changed.store.folder != first.store.folder
    same = TrainingBackup(first.store.folder, "Trainer_tiny")
    assert same.resume is not None and same.resume["epochs_done"] == 2
    assert os.path.dirname(first.store.folder) == str(tmp_path / "Trainer_tiny" / backup_store.BACKUP_DIR)


def test_an_interrupted_save_is_skipped_and_finish_deletes_the_backup(tmp_path):
    backup = tiny_training(tmp_path, {"epochs": 3}, epochs=3)
    folder = backup.store.folder
    assert sorted(os.listdir(folder)) == ["epoch-00003"]  # earlier saves deleted once a newer is complete
    interrupted = os.path.join(folder, "epoch-00004")
    os.makedirs(interrupted)
    with open(os.path.join(interrupted, backup_store.STATE_FILE), "w") as f:
        f.write('{"phases": {"tiny": ')  # killed while writing
    resumed = TrainingBackup(folder, "Trainer_tiny")
    assert resumed.resume["from"] == os.path.join(folder, "epoch-00003")
    resumed.finish()
    assert not os.path.exists(os.path.dirname(folder))


class KilledAtEpoch(Exception):
    pass


class KillAtEpochBegin(keras.callbacks.Callback):
    def __init__(self, epoch: int):
        super().__init__()
        self.kill_epoch = epoch

    def on_epoch_begin(self, epoch, logs=None):
        if epoch == self.kill_epoch:
            raise KilledAtEpoch()


def averaged_training(tmp_path, epochs: int, kill_at_epoch=None):
    """A one-weight regression trained full-batch (deterministic) with averaged weights and the
    backup; returns the model, holding the averaged weights after the last epoch."""
    backup = tiny_backup(tmp_path, "tests.tiny_averaged", {"epochs": epochs})
    model = keras.Sequential([keras.Input((1,)), keras.layers.Dense(1, kernel_initializer="zeros")])
    model.compile(optimizer=common.rmsprop(0.05, ema_momentum=0.5), loss="mse")
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(-1, 1)
    averaging = common.averaged_weights()
    kill = [] if kill_at_epoch is None else [KillAtEpochBegin(kill_at_epoch)]
    backup.phase("tiny", epochs, model, tracked=[averaging]).run(lambda initial_epoch, callback: model.fit(
        x, 2 * x + 1, epochs=epochs, initial_epoch=initial_epoch, batch_size=8, shuffle=False,
        validation_data=(x, 2 * x + 1), callbacks=[averaging] + kill + [callback], verbose=0))
    return model


def test_averaged_weights_are_saved_and_a_resumed_run_trains_the_raw_ones(tmp_path):
    """A backup is saved while the model holds the averaged weights: the resumed run must put
    the raw ones back before its next step, or it trains on from the average."""
    uninterrupted = averaged_training(tmp_path / "uninterrupted", epochs=4).get_weights()

    with pytest.raises(KilledAtEpoch):
        averaged_training(tmp_path / "killed", epochs=4, kill_at_epoch=2)
    saved = read_json_state(tmp_path / "killed")
    (averaging,) = saved["callbacks"]
    assert averaging == {"class": "SwapEMAWeights", "state": {"_ema_weights_in_model": True}}
    model = averaged_training(tmp_path / "killed", epochs=4)
    resumed = model.get_weights()

    for expected, actual in zip(uninterrupted, resumed, strict=True):
        np.testing.assert_allclose(actual, expected, rtol=1e-6)
    # Not converged (4 steps from zero towards y = 2x + 1): training on from the average instead
    # of the raw weights would have ended elsewhere.
    x = np.linspace(-1, 1, 8, dtype=np.float32).reshape(-1, 1)
    assert model.evaluate(x, 2 * x + 1, verbose=0) > 0.1


def read_json_state(root) -> dict:
    (state_file,) = glob.glob(str(root / "Trainer_tiny" / backup_store.BACKUP_DIR / "*" / "*" /
                                  backup_store.STATE_FILE))
    with open(state_file) as f:
        return json.load(f)
