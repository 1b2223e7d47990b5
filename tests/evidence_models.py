"""Models and images for the explanation tests (no tests here).

`evidence_model` is a convnet whose decision provably rests on one colour: its
conv layer sees red (channel 0) and green (channel 1), global average pooling
and a dense head turn "more red" into class 1 and "more green" into class 0.
On an image with one red square, the only evidence for class 1 is that square.
"""
import dataclasses

import keras
import numpy as np
from PIL import Image

from components import contract

SHAPE = (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, contract.IMAGE_CHANNELS)


@dataclasses.dataclass(frozen=True)
class Square:
    top: int
    left: int
    size: int
    colour: tuple

    def contains(self, row: float, col: float) -> bool:
        return self.top <= row < self.top + self.size and self.left <= col < self.left + self.size


def _set_evidence_weights(conv: keras.layers.Conv2D, head: keras.layers.Dense, softmax: bool):
    kernel = np.zeros((3, 3, 3, 2), np.float32)
    kernel[1, 1, 0, 0] = 1.0  # filter 0: red
    kernel[1, 1, 1, 1] = 1.0  # filter 1: green
    conv.set_weights([kernel, np.full(2, -0.5, np.float32)])  # fires only on saturated colour
    strength = 100.0
    if softmax:
        head.set_weights([np.array([[-strength, strength], [strength, -strength]], np.float32),
                          np.zeros(2, np.float32)])
    else:
        head.set_weights([np.array([[strength], [-strength]], np.float32), np.zeros(1, np.float32)])


def evidence_model(softmax: bool = False, nested: bool = False) -> keras.Model:
    """Conv(red, green) -> MaxPool -> GlobalAveragePooling -> Dense (sigmoid or softmax).
    nested: the conv layers sit in a sub-model, as VGG16's base does."""
    conv = keras.layers.Conv2D(2, 3, activation="relu", padding="same", name="evidence_conv")
    pool = keras.layers.MaxPooling2D(2, name="evidence_pool")
    head = keras.layers.Dense(2 if softmax else 1, activation="softmax" if softmax else "sigmoid",
                              name="predictions")
    inputs = keras.Input(SHAPE)
    if nested:
        base_in = keras.Input(SHAPE)
        base = keras.Model(base_in, pool(conv(base_in)), name="base")
        features = base(inputs)
    else:
        features = pool(conv(inputs))
    outputs = head(keras.layers.GlobalAveragePooling2D(name="gap")(features))
    model = keras.Model(inputs, outputs, name="evidence_convnet")
    _set_evidence_weights(conv, head, softmax)
    return model


def image_with_squares(*squares: Square, background=(60, 60, 60)) -> np.ndarray:
    image = np.empty(SHAPE, np.uint8)
    image[:] = background
    for s in squares:
        image[s.top:s.top + s.size, s.left:s.left + s.size] = s.colour
    return image


def write_png(image: np.ndarray, path: str) -> str:
    Image.fromarray(image).save(path)
    return path


def dense_only_model() -> keras.Model:
    inputs = keras.Input(SHAPE)
    x = keras.layers.Flatten()(keras.layers.Rescaling(0.5)(inputs))
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x), name="no_convs")
