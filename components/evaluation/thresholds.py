"""Blessing thresholds: a plain dataclass, importable without TensorFlow or TFMA
(pipeline/configs.py holds one per served model)."""
import dataclasses


@dataclasses.dataclass(frozen=True)
class BlessingThresholds:
    """What a candidate must reach on the test split to be pushed.

    min_accuracy: absolute floor on accuracy over the whole test split:
        binary accuracy for two classes, sparse categorical accuracy for more
        (components/evaluation/eval_config.py picks the metric).
    max_accuracy_drop: how much accuracy may fall below the baseline's (the
        latest pushed model of the same name); 0 means "no worse". Ignored on a
        first run, when there is no baseline.
    """
    min_accuracy: float
    max_accuracy_drop: float = 0.0

    def __post_init__(self):
        if not 0.0 <= self.min_accuracy <= 1.0:
            raise ValueError(f"min_accuracy must be in [0, 1], got {self.min_accuracy}")
        if not 0.0 <= self.max_accuracy_drop <= 1.0:
            raise ValueError(f"max_accuracy_drop must be in [0, 1], got {self.max_accuracy_drop}")
