"""The book's small convnet, listings 5.5/5.13 (3,453,121 parameters on 150x150x3)."""
from typing import Optional

import keras

from components import contract
from components.image_shape import BOOK_IMAGE_SHAPE, ImageShape
from components.training.heads import apply_layers, classifier_output, input_resizing

FILTERS = (32, 64, 128, 128)
DENSE_UNITS = 512


def build_scratch_model(n_classes: int = 2, image_shape: ImageShape = BOOK_IMAGE_SHAPE,
                        transform_shape: Optional[ImageShape] = None) -> keras.Model:
    """Listings 5.5/5.13: four Conv2D+MaxPooling2D blocks, Dropout(0.5), Dense(512), Dense(1), on
    image_shape; taking Transform's transform_shape images (None: image_shape) and resizing them."""
    transform_shape = transform_shape or image_shape
    inputs = keras.Input(transform_shape.as_tuple, name=contract.TRANSFORMED_IMAGE_KEY)
    x = apply_layers(inputs, input_resizing(transform_shape, image_shape, "The scratch convnet"))
    for index, filters in enumerate(FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv2d_{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(DENSE_UNITS, activation="relu", name="dense")(x)
    outputs = classifier_output(n_classes)(x)
    return keras.Model(inputs, outputs, name="scratch_convnet")
