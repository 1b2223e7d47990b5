"""TFX Trainer module: the book's MNIST convnet (listings 5.1-5.3) on 28x28
grayscale images, for any number of classes (the book: the ten digits).
Entry point: run_fn."""
from absl import logging

from components.training import common, data, precision
from components.training.resume import TrainingBackup

from . import SPEC
from .hparams import MnistHParams
from .network import build_mnist_model

PHASE = "mnist"


def train(hp: MnistHParams, inputs: common.TrainingInputs, model_run_dir: str, backup: TrainingBackup):
    """Builds, compiles and fits the model (no augmentation, as in the book), from where
    `backup` says a killed run stopped; returns (model, history dict)."""
    common.seed_everything(hp.seed)
    repeat = hp.steps_per_epoch is not None
    train_ds = data.input_fn(inputs.train, hp.batch_size, training=True, augmentation=None,
                             shuffle_buffer=hp.shuffle_buffer, repeat=repeat, seed=hp.seed)
    eval_ds = data.input_fn(inputs.eval, hp.batch_size, training=False)
    with common.distribution_strategy().scope(), precision.policy_scope(hp.precision):
        model = build_mnist_model(inputs.n_classes, SPEC.image_shape, inputs.image_shape)
        common.compile_classifier(model, hp.learning_rate, inputs.n_classes)
    logging.info("Training %s on %d classes: %d epochs x %s steps of %d", SPEC.title, inputs.n_classes,
                 hp.epochs, hp.steps_per_epoch or "all", hp.batch_size)
    history = backup.phase(PHASE, hp.epochs, model).run(lambda initial_epoch, backup_callback: model.fit(
        train_ds, epochs=hp.epochs, initial_epoch=initial_epoch, steps_per_epoch=hp.steps_per_epoch,
        validation_data=eval_ds, validation_steps=hp.validation_steps,
        callbacks=[common.ProgressLogger(PHASE, hp.epochs), common.tensorboard(model_run_dir), backup_callback],
        verbose=0))
    return model, history


def run_fn(fn_args):
    """TFX Trainer entry point."""
    hp = SPEC.hparams(fn_args.custom_config)
    inputs = common.TrainingInputs(fn_args)
    backup = TrainingBackup.for_run(fn_args, __name__, hp.as_custom_config())
    model, history = train(hp, inputs, fn_args.model_run_dir, backup)
    common.write_training_report(fn_args.model_run_dir, SPEC.title, history, hp.as_custom_config(),
                                 resumes=backup.resumes)
    common.export(model, inputs, fn_args.serving_model_dir)
    backup.finish()
