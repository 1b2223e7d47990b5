"""The MNIST convnet's hyper-parameters (listings 5.1-5.3)."""
import dataclasses
from typing import Optional

from components.training.hparams import (
    PRECISION_AUTO,
    CustomConfig,
    check_positive,
    check_positive_or_none,
    check_precision,
)


@dataclasses.dataclass(frozen=True)
class MnistHParams(CustomConfig):
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
        check_precision(self)
        check_positive(self, "epochs", "batch_size", "shuffle_buffer", "learning_rate")
        check_positive_or_none(self, "steps_per_epoch", "validation_steps")

