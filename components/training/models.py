"""The book's models (chapter 5), built exactly, plus the pieces VGG16 training needs.

All models take Transform's output, float32 in [0, 1]: [150, 150, 3] RGB for
the cats vs dogs convnets, [28, 28, 1] grayscale for the MNIST convnet. Two
classes get the book's one-unit sigmoid head; more classes a softmax head of
one unit per class.
"""
from typing import List, Tuple

import keras

from components import contract
from components.image_shape import BOOK_IMAGE_SHAPE, MNIST_IMAGE_SHAPE
from components.training import vgg16_weights

INPUT_SHAPE = BOOK_IMAGE_SHAPE.as_tuple
SCRATCH_FILTERS = (32, 64, 128, 128)
SCRATCH_DENSE_UNITS = 512
MNIST_INPUT_SHAPE = MNIST_IMAGE_SHAPE.as_tuple
MNIST_FILTERS = (32, 64, 64)
MNIST_DENSE_UNITS = 64
MNIST_CLASSES = 10


def classifier_output(n_classes: int) -> keras.layers.Layer:
    """Dense(1, sigmoid) for two classes (P(class 1)), Dense(n, softmax) for more.

    Always float32, whatever the dtype policy: probabilities and the loss stay
    numerically sound under mixed precision, and the serving contract unchanged."""
    if n_classes < 2:
        raise ValueError(f"a classifier needs at least two classes, got {n_classes}")
    if n_classes == 2:
        return keras.layers.Dense(1, activation="sigmoid", name="predictions", dtype="float32")
    return keras.layers.Dense(n_classes, activation="softmax", name="predictions", dtype="float32")


def build_scratch_model(n_classes: int = 2) -> keras.Model:
    """Listings 5.5/5.13: four Conv2D+MaxPooling2D blocks, Dropout(0.5), Dense(512), Dense(1)."""
    inputs = keras.Input(INPUT_SHAPE, name=contract.TRANSFORMED_IMAGE_KEY)
    x = inputs
    for index, filters in enumerate(SCRATCH_FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv2d_{index}")(x)
        x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(0.5, name="dropout")(x)
    x = keras.layers.Dense(SCRATCH_DENSE_UNITS, activation="relu", name="dense")(x)
    outputs = classifier_output(n_classes)(x)
    return keras.Model(inputs, outputs, name="scratch_convnet")


def build_mnist_model(n_classes: int = MNIST_CLASSES) -> keras.Model:
    """Listings 5.1/5.2: Conv2D(32)-MaxPool-Conv2D(64)-MaxPool-Conv2D(64) on 28x28x1
    (55,744 parameters), Flatten, Dense(64, relu), Dense(10, softmax): 93,322 in all."""
    inputs = keras.Input(MNIST_INPUT_SHAPE, name=contract.TRANSFORMED_IMAGE_KEY)
    x = inputs
    for index, filters in enumerate(MNIST_FILTERS, start=1):
        x = keras.layers.Conv2D(filters, 3, activation="relu", name=f"conv2d_{index}")(x)
        if index < len(MNIST_FILTERS):
            x = keras.layers.MaxPooling2D(2, name=f"max_pooling2d_{index}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dense(MNIST_DENSE_UNITS, activation="relu", name="dense")(x)
    outputs = classifier_output(n_classes)(x)
    return keras.Model(inputs, outputs, name="mnist_convnet")


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


class Vgg16Parts:
    """VGG16 transfer learning, listing 5.20: preprocessing, conv base (nested, as
    in the book: model.add(conv_base)) and a dense head, sharing layers with the
    sub-models the two training phases need."""

    def __init__(self, weights: str, dense_units: int = 256, dropout: float = 0.0, n_classes: int = 2):
        self.weights = weights
        self.preprocessing = vgg16_weights.preprocessing_layer(weights)
        self.base = vgg16_weights.conv_base(weights)
        # Recorded before layers are reused in other graphs (then `layer.output` is ambiguous).
        self._output_shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in self.base.layers}
        self._layer_names = [layer.name for layer in self.base.layers]
        self.head = build_head(dense_units, dropout, n_classes)
        inputs = keras.Input(INPUT_SHAPE, name=contract.TRANSFORMED_IMAGE_KEY)
        outputs = apply_layers(self.base(self.preprocessing(inputs)), self.head)
        self.model = keras.Model(inputs, outputs, name="vgg16_transfer")

    def freeze_base(self):
        """Feature extraction (listing 5.21): the whole base frozen."""
        self.base.trainable = False

    def unfreeze_from(self, layer_name: str):
        """Fine-tuning (listing 5.22): layers from `layer_name` on trainable, the rest frozen."""
        start = self._index(layer_name)
        self.base.trainable = True
        for index, layer in enumerate(self.base.layers):
            layer.trainable = index >= start

    def _index(self, layer_name: str) -> int:
        if layer_name not in self._layer_names:
            raise ValueError(f"{layer_name!r} is not a VGG16 layer; layers: {self._layer_names}")
        return self._layer_names.index(layer_name)

    def split_at(self, layer_name: str) -> Tuple[keras.Model, keras.Model]:
        """(trunk: image -> output of `layer_name`, top: that output -> prediction).

        Both share their layers with self.model, so training `top` on cached
        trunk outputs trains the full model.
        """
        cut = self._index(layer_name)
        inputs = keras.Input(INPUT_SHAPE, name=contract.TRANSFORMED_IMAGE_KEY)
        trunk_out = apply_layers(self.preprocessing(inputs), self.base.layers[1:cut + 1])
        trunk = keras.Model(inputs, trunk_out, name=f"trunk_to_{layer_name}")
        features = keras.Input(self._output_shapes[layer_name], name=f"{layer_name}_features")
        x = apply_layers(features, self.base.layers[cut + 1:])
        top = keras.Model(features, apply_layers(x, self.head), name=f"top_from_{layer_name}")
        return trunk, top

    def segment(self, after: str, end_at: str) -> keras.Model:
        """Base layers after `after` up to and including `end_at`, on `after`'s output."""
        start, end = self._index(after), self._index(end_at)
        features = keras.Input(self._output_shapes[after], name=f"{after}_features")
        return keras.Model(features, apply_layers(features, self.base.layers[start + 1:end + 1]),
                           name=f"{after}_to_{end_at}")

    def fine_tune_cut(self, first_trainable: str) -> str:
        """The frozen layer just before `first_trainable` (block4_pool for block5_conv1)."""
        return self._layer_names[self._index(first_trainable) - 1]
