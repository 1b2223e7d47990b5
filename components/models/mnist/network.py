"""The book's MNIST convnet, listings 5.1/5.2."""
from typing import Optional

import keras

from components import contract
from components.image_shape import MNIST_IMAGE_SHAPE, ImageShape
from components.training.heads import apply_layers, classifier_output, input_resizing

FILTERS = (32, 64, 64)
DENSE_UNITS = 64
DIGITS = 10


def build_mnist_model(n_classes: int = DIGITS, image_shape: ImageShape = MNIST_IMAGE_SHAPE,
                      transform_shape: Optional[ImageShape] = None) -> keras.Model:
    """Listings 5.1/5.2: Conv2D(32)-MaxPool-Conv2D(64)-MaxPool-Conv2D(64) on 28x28x1
    (55,744 parameters), Flatten, Dense(64, relu), Dense(10, softmax): 93,322 in all; taking
    Transform's transform_shape images (None: image_shape) and resizing them."""
    transform_shape = transform_shape or image_shape
    inputs = keras.Input(transform_shape.as_tuple, name=contract.TRANSFORMED_IMAGE_KEY)
    x = apply_layers(inputs, input_resizing(transform_shape, image_shape, "The MNIST convnet"))
    for index, filters in enumerate(FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv2d_{index}")(x)
        if index < len(FILTERS):
            x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(DENSE_UNITS, activation="relu", name="dense")(x)
    outputs = classifier_output(n_classes)(x)
    return keras.Model(inputs, outputs, name="mnist_convnet")
