"""Reach inside a model: its conv/pool layers and sub-models that expose them.

Keras 3 keeps a nested base (the VGG16 convolutional base inside the
classifier) as one layer with its own graph, so `base.get_layer(...).output`
is not connected to the outer model's input. For chain-shaped models (the
book's scratch convnet and VGG16 + head, flat or nested) the layers are
unrolled into one chain and re-called on a fresh input: the resulting models
share the trained weights and expose every layer. The unrolled chain is
checked against the original model once; models that are not chains fall back
to the top-level graph.
"""
import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import keras
import numpy as np

from components.explain.errors import NotAConvnetError, UnknownLayerError
from components.image_shape import BOOK_IMAGE_SHAPE

CONV_LAYER_TYPES = (keras.layers.Conv2D, keras.layers.SeparableConv2D,
                    keras.layers.DepthwiseConv2D)
POOL_LAYER_TYPES = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


@dataclasses.dataclass(frozen=True)
class GraphCheck:
    """How closely the unrolled chain must reproduce the model's own output."""
    atol: float = 1e-4
    seed: int = 0


def _unroll(model: keras.Model) -> List[keras.layers.Layer]:
    chain = []
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            chain.extend(_unroll(layer))
        else:
            chain.append(layer)
    return chain


def _model_input_shape(model: keras.Model) -> Tuple[int, ...]:
    shape = tuple(model.inputs[0].shape[1:]) if model.inputs else ()
    if len(shape) != 3 or None in shape:
        return BOOK_IMAGE_SHAPE.as_tuple
    return shape


class ModelGraph:
    """A trained classifier and the layers an explanation can look at."""

    def __init__(self, model: keras.Model, check: GraphCheck = GraphCheck()):
        self.model = model
        self.input_shape = _model_input_shape(model)
        self._chain = _unroll(model)
        self._is_chain = self._chain_reproduces_model(check)
        layers = self._chain if self._is_chain else [
            layer for layer in model.layers if not isinstance(layer, keras.layers.InputLayer)]
        self.conv_layers = [layer.name for layer in layers if isinstance(layer, CONV_LAYER_TYPES)]
        self.feature_layers = [layer.name for layer in layers
                               if isinstance(layer, CONV_LAYER_TYPES + POOL_LAYER_TYPES)]
        self._layers: Dict[str, keras.layers.Layer] = {layer.name: layer for layer in layers}
        if not self.conv_layers:
            names = ", ".join(layer.name for layer in layers) or "none"
            raise NotAConvnetError(
                f"model '{model.name}' has no 2-D convolution layers (its layers: {names}); "
                "activations, filter patterns and Grad-CAM need a convnet")

    def _chain_reproduces_model(self, check: GraphCheck) -> bool:
        if len(self.model.inputs) != 1 or len(self.model.outputs) != 1:
            return False
        try:
            chain_model = self._chain_model([], self.input_shape)
        except (ValueError, TypeError):
            return False
        probe = np.random.default_rng(check.seed).uniform(
            size=(1,) + self.input_shape).astype(np.float32)
        expected = np.asarray(self.model(probe, training=False))
        outputs = chain_model(probe, training=False)
        actual = np.asarray(outputs[-1] if isinstance(outputs, (list, tuple)) else outputs)
        return expected.shape == actual.shape and np.allclose(expected, actual, atol=check.atol)

    def _chain_model(self, layer_names: Sequence[str], input_shape, stop_after: Optional[str] = None):
        inputs = keras.Input(shape=input_shape)
        x, taps = inputs, {}
        for layer in self._chain:
            x = layer(x)
            if layer.name in layer_names:
                taps[layer.name] = x
            if layer.name == stop_after:
                break
        return keras.Model(inputs, [taps[name] for name in layer_names] + [x])

    def check_layers(self, layer_names: Sequence[str], allowed: Sequence[str]) -> None:
        unknown = [name for name in layer_names if name not in allowed]
        if unknown:
            raise UnknownLayerError(
                f"model '{self.model.name}' has no conv/pooling layer named "
                f"{', '.join(repr(n) for n in unknown)}; choose from: {', '.join(allowed)}")

    def feature_model(self, layer_names: Sequence[str], any_size: bool = False) -> keras.Model:
        """input -> [output of each named layer]. any_size: a fully convolutional
        prefix accepting any image size (for filter patterns)."""
        self.check_layers(layer_names, self.feature_layers)
        if not self._is_chain:
            return keras.Model(self.model.inputs[0],
                               [_as_float32(self._layers[name].output) for name in layer_names])
        last = max(layer_names, key=self.feature_layers.index)
        shape = (None, None, self.input_shape[-1]) if any_size else self.input_shape
        chain_model = self._chain_model(layer_names, shape, stop_after=last)
        return keras.Model(chain_model.input, [_as_float32(t) for t in chain_model.outputs[:-1]])

    def gradcam_model(self, conv_layer: str) -> keras.Model:
        """input -> [conv layer's output, predictions]."""
        self.check_layers([conv_layer], self.conv_layers)
        if not self._is_chain:
            return keras.Model(self.model.inputs[0],
                               [self._layers[conv_layer].output] + list(self.model.outputs))
        return self._chain_model([conv_layer], self.input_shape)

    @property
    def last_conv_layer(self) -> str:
        return self.conv_layers[-1]


def _as_float32(tensor):
    """Activations in float32 whatever the model computes in (a mixed-precision
    model's layers output bfloat16 or float16), so explanations do float32 math."""
    return keras.ops.cast(tensor, "float32")


def first_conv_of_each_block(graph: ModelGraph) -> List[str]:
    """Conv layers that open a block (come first or right after a pooling layer):
    block1_conv1 .. block5_conv1 for VGG16, every conv layer of the scratch convnet."""
    firsts, previous_was_conv = [], False
    for name in graph.feature_layers:
        is_conv = name in graph.conv_layers
        if is_conv and not previous_was_conv:
            firsts.append(name)
        previous_was_conv = is_conv
    return firsts
