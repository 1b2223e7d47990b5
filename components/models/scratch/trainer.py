"""TFX Trainer module: the book's convnet trained from scratch with augmentation
(listings 5.13/5.14). Entry point: run_fn."""
from typing import List, Optional

import keras
from absl import logging

from components.training import common, data, precision
from components.training.resume import TrainingBackup

from . import SPEC
from .hparams import SCHEDULE_COSINE, ScratchHParams
from .network import build_scratch_model

PHASE = "scratch"


class Callbacks:
    """Progress, TensorBoard, time budget, and the goal recipe's schedule, weight averaging and
    best-weights keeping; `steering` are those whose state a resumed run restores (in this
    order: the averaged weights must be in the model before the checkpoint saves it)."""

    def __init__(self, hp: ScratchHParams, model_run_dir: str, started: float):
        self.others = [common.ProgressLogger(PHASE, hp.epochs), common.TimeBudget(hp.time_budget_minutes, started),
                       common.tensorboard(model_run_dir)]
        self.steering: List[keras.callbacks.Callback] = []
        if hp.reduce_lr_patience is not None:
            self.steering.append(keras.callbacks.ReduceLROnPlateau(
                monitor="val_loss", factor=hp.reduce_lr_factor, patience=hp.reduce_lr_patience,
                min_lr=hp.min_learning_rate))
        if hp.ema_momentum is not None:
            self.steering.append(common.averaged_weights())
        self.best_weights: Optional[keras.callbacks.ModelCheckpoint] = None
        if hp.keep_best_weights:
            self.best_weights = common.keep_best_weights(model_run_dir)
            self.steering.append(self.best_weights)
        if hp.early_stopping_patience is not None:
            self.steering.append(keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                               patience=hp.early_stopping_patience))

    @property
    def all(self) -> List[keras.callbacks.Callback]:
        return self.others + self.steering


def learning_rate(hp: ScratchHParams, steps_per_epoch: int):
    """The optimizer's learning rate: a float (plateau schedule, changed by ReduceLROnPlateau)
    or, for 'cosine', a schedule of the optimizer's step: linear warm-up from 0, then cosine
    decay to min_learning_rate after the last epoch's last step."""
    if hp.learning_rate_schedule != SCHEDULE_COSINE:
        return hp.learning_rate
    warmup_steps = hp.warmup_epochs * steps_per_epoch
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup_steps else hp.learning_rate,
        decay_steps=(hp.epochs - hp.warmup_epochs) * steps_per_epoch,
        alpha=hp.min_learning_rate / hp.learning_rate,
        warmup_target=hp.learning_rate if warmup_steps else None, warmup_steps=warmup_steps)


def train(hp: ScratchHParams, inputs: common.TrainingInputs, model_run_dir: str, backup: TrainingBackup):
    """Builds, compiles and fits the model, from where `backup` says a killed run stopped;
    returns (model, history dict, kept epoch or None)."""
    common.seed_everything(hp.seed)
    repeat = hp.steps_per_epoch is not None
    train_ds = data.input_fn(inputs.train, hp.batch_size, training=True,
                             augmentation=hp.augmentation if hp.augment else None,
                             shuffle_buffer=hp.shuffle_buffer, repeat=repeat, seed=hp.seed)
    eval_ds = data.input_fn(inputs.eval, hp.batch_size, training=False)
    with common.distribution_strategy().scope(), precision.policy_scope(hp.precision) as policy:
        model = build_scratch_model(inputs.n_classes, SPEC.image_shape, inputs.image_shape)
        steps_per_epoch = hp.steps_per_epoch or int(train_ds.cardinality())
        common.compile_classifier(model, learning_rate(hp, steps_per_epoch), inputs.n_classes,
                                  label_smoothing=hp.label_smoothing, weight_decay=hp.weight_decay,
                                  ema_momentum=hp.ema_momentum)
    logging.info("Training %s: %d epochs x %s steps of %d (augmentation %s, %s)", SPEC.title, hp.epochs,
                 hp.steps_per_epoch or "all", hp.batch_size, "on" if hp.augment else "off", policy)
    chosen = Callbacks(hp, model_run_dir, started=backup.clock_start)
    phase = backup.phase(PHASE, hp.epochs, model, tracked=chosen.steering, best_weights=chosen.best_weights)
    history = phase.run(lambda initial_epoch, backup_callback: model.fit(
        train_ds, epochs=hp.epochs, initial_epoch=initial_epoch, steps_per_epoch=hp.steps_per_epoch,
        validation_data=eval_ds, validation_steps=hp.validation_steps,
        callbacks=chosen.all + [backup_callback], verbose=0))
    kept_epoch = common.restore_best_weights(model, model_run_dir, history) if hp.keep_best_weights else None
    return model, history, kept_epoch


def run_fn(fn_args):
    """TFX Trainer entry point."""
    hp = SPEC.hparams(fn_args.custom_config)
    inputs = common.TrainingInputs(fn_args)
    backup = TrainingBackup.for_run(fn_args, __name__, hp.as_custom_config())
    model, history, kept_epoch = train(hp, inputs, fn_args.model_run_dir, backup)
    common.write_training_report(
        fn_args.model_run_dir, SPEC.title, history, hp.as_custom_config(),
        augmentation=hp.augmentation if hp.augment else None,
        sample_image=common.first_image(inputs.train), kept_epoch=kept_epoch, resumes=backup.resumes)
    common.export(model, inputs, fn_args.serving_model_dir)
    backup.finish()
