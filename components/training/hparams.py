"""What every Trainer's hyper-parameters share: the dict round trip through the
Trainer's custom_config (CustomConfig), the augmentation of listing 5.14, the
precision choices and the checks. Each model's own dataclass lives in its folder
(components/models/<model>/hparams.py). Importable without TensorFlow."""
import dataclasses
from typing import Any, Dict, Optional, Type, TypeVar

T = TypeVar("T")

PRECISION_AUTO = "auto"
"""mixed_float16 on a GPU, mixed_bfloat16 on a CPU with AMX or AVX512-BF16, float32 otherwise."""
PRECISION_FLOAT32 = "float32"
PRECISIONS = (PRECISION_AUTO, PRECISION_FLOAT32, "mixed_bfloat16", "mixed_float16")

POOLING_FLATTEN = "flatten"
"""The book's: every position's features side by side (4x4x512 = 8,192 values for VGG16 at 150)."""
POOLING_AVERAGE = "average"
"""Each feature map's mean over the positions (512 values for VGG16 at any input size): the
dense layer no longer learns one weight per position (GlobalAveragePooling2D)."""
POOLINGS = (POOLING_FLATTEN, POOLING_AVERAGE)
"""The dense heads' ways to read conv features (training/heads.py)."""

DEFAULT_PRESET = "default"
"""The preset every run starts from: each model's own defaults (its ModelSpec)."""


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


class CustomConfig:
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


def check_positive(params, *names):
    for name in names:
        if getattr(params, name) <= 0:
            raise ValueError(f"{name} must be > 0, got {getattr(params, name)!r}")


def check_positive_or_none(params, *names):
    for name in names:
        value = getattr(params, name)
        if value is not None and value <= 0:
            raise ValueError(f"{name} must be > 0 or None, got {value!r}")


def check_precision(params):
    if params.precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {params.precision!r}")
