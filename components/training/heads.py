"""What every model's network shares: the classifier output and the dense head.

All models take Transform's output, float32 in [0, 1]. Two classes get the book's
one-unit sigmoid head; more classes a softmax head of one unit per class.
"""
import keras

from components.training.hparams import POOLING_AVG_MAX, POOLING_FLATTEN, POOLINGS


def classifier_output(n_classes: int) -> keras.layers.Layer:
    """Dense(1, sigmoid) for two classes (P(class 1)), Dense(n, softmax) for more.

    Always float32, whatever the dtype policy: probabilities and the loss stay
    numerically sound under mixed precision, and the serving contract unchanged."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got {n_classes}")
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="predictions", dtype="float32")
    return keras.layers.Dense(n_classes, activation="softmax", name="predictions", dtype="float32")


class DenseHead:
    """Conv features -> pooling -> Dense(relu) -> [Dropout] -> classifier output (listings 5.18
    and 5.20 with Flatten). Called on a tensor; its layers are shared by every graph it is
    called in (the whole model, and the part trained on cached features)."""

    def __init__(self, dense_units: int, dropout: float, n_classes: int = 2, pooling: str = POOLING_FLATTEN):
        if pooling == POOLING_FLATTEN:
            self.pooling = [keras.layers.Flatten(name="flatten")]
        elif pooling == POOLING_AVG_MAX:
            self.pooling = [keras.layers.GlobalAveragePooling2D(name="global_average_pool"),
                            keras.layers.GlobalMaxPooling2D(name="global_max_pool")]
            self.concatenate = keras.layers.Concatenate(name="average_and_max")
        else:
            raise ValueError(f"head pooling must be one of {', '.join(POOLINGS)}, got {pooling!r}")
        self.layers = [keras.layers.Dense(dense_units, activation="relu", name="dense")]
        if dropout:
            self.layers.append(keras.layers.Dropout(dropout, name="dropout"))
        self.layers.append(classifier_output(n_classes))

    def __call__(self, features):
        if len(self.pooling) == 1:
            pooled = self.pooling[0](features)
        else:
            pooled = self.concatenate([pool(features) for pool in self.pooling])
        return apply_layers(pooled, self.layers)


def apply_layers(x, layers):
    for layer in layers:
        x = layer(x)
    return x
