"""What every model's network shares: the classifier output and the dense head.

All models take Transform's output, float32 in [0, 1]. Two classes get the book's
one-unit sigmoid head; more classes a softmax head of one unit per class.
"""
from typing import List

import keras


def classifier_output(n_classes: int) -> keras.layers.Layer:
    """Dense(1, sigmoid) for two classes (P(class 1)), Dense(n, softmax) for more.

    Always float32, whatever the dtype policy: probabilities and the loss stay
    numerically sound under mixed precision, and the serving contract unchanged."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got {n_classes}")
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="predictions", dtype="float32")
    return keras.layers.Dense(n_classes, activation="softmax", name="predictions", dtype="float32")


def build_head(dense_units: int, dropout: float, n_classes: int = 2) -> List[keras.layers.Layer]:
    """Flatten, Dense(256, relu), [Dropout], Dense(1, sigmoid) (listings 5.18 and 5.20)."""
    layers = [keras.layers.Flatten(name="flatten"),
              keras.layers.Dense(dense_units, activation="relu", name="dense")]
    if dropout:
        layers.append(keras.layers.Dropout(dropout, name="dropout"))
    layers.append(classifier_output(n_classes))
    return layers


def apply_layers(x, layers):
    for layer in layers:
        x = layer(x)
    return x
