"""Image shapes: what each model's network takes (its ModelSpec), and what Transform decodes
and resizes every image to.

A plain dataclass, importable without TensorFlow: the pipeline chooses Transform's shape
from the selected models (the largest: pipeline/model_registry.py) and hands it to Transform
as custom_config; preprocessing_fn, the Trainers and explanations read it back.
"""
import dataclasses
from typing import Any, Dict, Optional, Tuple

from components import contract

SUPPORTED_CHANNELS = (1, 3)
"""Grayscale or RGB (decode_image converts either kind of file to what is asked)."""


@dataclasses.dataclass(frozen=True)
class ImageShape:
    height: int = contract.IMAGE_HEIGHT
    width: int = contract.IMAGE_WIDTH
    channels: int = contract.IMAGE_CHANNELS

    def __post_init__(self):
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"image height and width must be > 0, got {self.height}x{self.width}")
        if self.channels not in SUPPORTED_CHANNELS:
            raise ValueError(f"image channels must be 1 (grayscale) or 3 (RGB), got {self.channels}")

    @property
    def as_tuple(self) -> Tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    def __str__(self) -> str:
        return f"{self.height}x{self.width}x{self.channels}"

    def as_custom_config(self) -> Dict[str, Any]:
        return {"image_shape": dataclasses.asdict(self)}

    @classmethod
    def from_custom_config(cls, custom_config: Optional[Dict[str, Any]]) -> "ImageShape":
        """The shape in a Transform custom_config; the book's 150x150x3 when there is none."""
        values = (custom_config or {}).get("image_shape") or {}
        unknown = sorted(set(values) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown image_shape keys {unknown}; expected height, width, channels")
        return cls(**values)

    @classmethod
    def of(cls, shape) -> "ImageShape":
        """From a [height, width, channels] sequence (a feature spec's or model input's shape)."""
        dims = [int(d) for d in shape]
        if len(dims) != 3:
            raise ValueError(f"expected an image shape [height, width, channels], got {list(shape)}")
        return cls(*dims)


BOOK_IMAGE_SHAPE = ImageShape()
"""Chapter 5's cats vs dogs input: 150x150 RGB."""
IMAGENET_IMAGE_SHAPE = ImageShape(224, 224, 3)
"""The size ImageNet classifiers such as VGG16 were trained at."""
MNIST_IMAGE_SHAPE = ImageShape(28, 28, 1)
"""Listing 5.1's input: 28x28 grayscale."""
