"""VGG16 transfer learning, listing 5.20: the ImageNet conv base and a dense head,
with the sub-models the two training phases need."""
from typing import Optional, Tuple

import keras

from components import contract
from components.image_shape import BOOK_IMAGE_SHAPE, ImageShape
from components.training.heads import POOLING_FLATTEN, apply_layers, build_head, input_resizing

from . import weights as vgg16_weights


class Vgg16Parts:
    """VGG16 transfer learning, listing 5.20: preprocessing, conv base (nested, as
    in the book: model.add(conv_base)) and a dense head, sharing layers with the
    sub-models the two training phases need."""

    def __init__(self, weights: str, dense_units: int = 256, dropout: float = 0.0, n_classes: int = 2,
                 image_shape: ImageShape = BOOK_IMAGE_SHAPE, transform_shape: Optional[ImageShape] = None,
                 pooling: str = POOLING_FLATTEN):
        """image_shape: what the conv base sees; transform_shape: Transform's images, the model's
        input, resized to image_shape in the model (None: image_shape); pooling: how the head
        reads the conv base's output (training/heads.py)."""
        self.weights = weights
        self.input_shape = transform_shape or image_shape
        """The model's input (Transform's images); the conv base's is image_shape."""
        self.input_layers = input_resizing(self.input_shape, image_shape, "VGG16") + [
            vgg16_weights.preprocessing_layer(weights)]
        self.base = vgg16_weights.conv_base(weights, image_shape)
        # Recorded before layers are reused in other graphs (then `layer.output` is ambiguous).
        self._output_shapes = {layer.name: tuple(layer.output.shape[1:]) for layer in self.base.layers}
        self._layer_names = [layer.name for layer in self.base.layers]
        self.head = build_head(dense_units, dropout, n_classes, pooling)
        inputs = keras.Input(self.input_shape.as_tuple, name=contract.TRANSFORMED_IMAGE_KEY)
        outputs = apply_layers(self.base(apply_layers(inputs, self.input_layers)), self.head)
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
        inputs = keras.Input(self.input_shape.as_tuple, name=contract.TRANSFORMED_IMAGE_KEY)
        trunk_out = apply_layers(apply_layers(inputs, self.input_layers), self.base.layers[1:cut + 1])
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
