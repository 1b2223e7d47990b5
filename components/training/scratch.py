"""TFX Trainer module: the book's convnet trained from scratch with augmentation
(listings 5.13/5.14). Entry point: components.training.scratch.run_fn."""
from absl import logging

from components.image_shape import BOOK_IMAGE_SHAPE
from components.training import common, data
from components.training.hparams import ScratchHParams
from components.training.models import build_scratch_model

TITLE = "Scratch convnet"


def train(hp: ScratchHParams, inputs: common.TrainingInputs):
    """Builds, compiles and fits the model; returns (model, history dict)."""
    inputs.require_image_shape(BOOK_IMAGE_SHAPE, TITLE)
    common.seed_everything(hp.seed)
    repeat = hp.steps_per_epoch is not None
    train_ds = data.input_fn(inputs.train, hp.batch_size, training=True,
                             augmentation=hp.augmentation if hp.augment else None,
                             shuffle_buffer=hp.shuffle_buffer, repeat=repeat, seed=hp.seed)
    eval_ds = data.input_fn(inputs.eval, hp.batch_size, training=False)
    with common.distribution_strategy().scope():
        model = build_scratch_model(inputs.n_classes)
        common.compile_classifier(model, hp.learning_rate, inputs.n_classes)
    logging.info("Training %s: %d epochs x %s steps of %d (augmentation %s)", TITLE, hp.epochs,
                 hp.steps_per_epoch or "all", hp.batch_size, "on" if hp.augment else "off")
    history = model.fit(train_ds, epochs=hp.epochs, steps_per_epoch=hp.steps_per_epoch,
                        validation_data=eval_ds, validation_steps=hp.validation_steps,
                        callbacks=[common.ProgressLogger("scratch", hp.epochs),
                                   common.TimeBudget(hp.time_budget_minutes)], verbose=0)
    return model, common.history_to_lists(history)


def run_fn(fn_args):
    """TFX Trainer entry point."""
    hp = ScratchHParams.from_custom_config(fn_args.custom_config)
    inputs = common.TrainingInputs(fn_args)
    model, history = train(hp, inputs)
    common.write_training_report(
        fn_args.model_run_dir, TITLE, history, hp.as_custom_config(),
        augmentation=hp.augmentation if hp.augment else None,
        sample_image=common.first_image(inputs.train))
    common.export(model, inputs, fn_args.serving_model_dir)
