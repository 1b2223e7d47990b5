"""The small convnet trained from scratch with augmentation (listings 5.5-5.14)."""
from components.evaluation.thresholds import BlessingThresholds
from components.image_shape import BOOK_IMAGE_SHAPE
from components.models.spec import ModelSpec

from .hparams import BOOK_SCRATCH, ScratchHParams

SPEC = ModelSpec(
    key="scratch", served_name="cats_vs_dogs_scratch", title="Scratch convnet", package=__name__,
    default_hparams=ScratchHParams(), presets={"book": BOOK_SCRATCH},
    default_thresholds=BlessingThresholds(min_accuracy=0.70), image_shape=BOOK_IMAGE_SHAPE,
    # A smoke run: every stage runs for real on the shipped sample, with budgets
    # that fit a few minutes on 2 CPU cores.
    quick_hparams={"epochs": 2, "steps_per_epoch": 3, "batch_size": 16})
