"""What every model's network shares: the resize from Transform's images, the classifier
output and the dense head.

All models take Transform's output, float32 in [0, 1]. Two classes get the book's
one-unit sigmoid head; more classes a softmax head of one unit per class.
"""
from typing import List

import keras

from components.image_shape import ImageShape
from components.training.hparams import POOLING_FLATTEN, POOLINGS


def classifier_output(n_classes: int) -> keras.layers.Layer:
    """Dense(1, sigmoid) for two classes (P(class 1)), Dense(n, softmax) for more.

    Always float32, whatever the dtype policy: probabilities and the loss stay
    numerically sound under mixed precision, and the serving contract unchanged."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got {n_classes}")
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="predictions", dtype="float32")
    return keras.layers.Dense(n_classes, activation="softmax", name="predictions", dtype="float32")


def build_head(dense_units: int, dropout: float, n_classes: int = 2,
               pooling: str = POOLING_FLATTEN) -> List[keras.layers.Layer]:
    """Pooling (Flatten, listings 5.18 and 5.20; or GlobalAveragePooling2D), Dense(relu),
    [Dropout], classifier output: a chain of layers, shared by every graph it is applied in
    (the whole model, and the part trained on cached features)."""
    if pooling not in POOLINGS:
        raise ValueError(f"head pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
    layers = [keras.layers.Flatten(name="flatten") if pooling == POOLING_FLATTEN
              else keras.layers.GlobalAveragePooling2D(name="global_average_pooling"),
              keras.layers.Dense(dense_units, activation="relu", name="dense")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    layers.append(classifier_output(n_classes))
    return layers


INPUT_RESIZE_LAYER_NAME = "resize_to_network_input"


def input_resizing(transform_shape: ImageShape, network_shape: ImageShape,
                   model_title: str) -> List[keras.layers.Layer]:
    """The layers between Transform's images and a model's network. One run has one Transform
    graph, at the largest size a selected model takes (pipeline/model_registry.image_shape_for);
    a model whose network takes another size resizes inside its own graph (bilinear with
    antialiasing, as Transform's own resize), so its served model does the same."""
    if transform_shape.channels != network_shape.channels:
        raise ValueError(f"{model_title} takes {network_shape} images, but Transform produces "
                         f"{transform_shape}: a model cannot change the number of channels; train it in "
                         f"a run of models with {network_shape.channels}-channel images")
    if transform_shape == network_shape:
        return []
    return [keras.layers.Resizing(network_shape.height, network_shape.width, interpolation="bilinear",
                                  antialias=True, name=INPUT_RESIZE_LAYER_NAME)]


def apply_layers(x, layers):
    for layer in layers:
        x = layer(x)
    return x
