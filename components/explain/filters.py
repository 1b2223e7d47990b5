"""Filter patterns (book 5.4.2): the input each filter responds to most.

Gradient ascent in input space: start from a grey image with a little noise
and repeatedly step along the gradient of the filter's mean activation,
normalised to unit RMS so the step size means the same for every filter.
All filters of a layer ascend together as one batch (each image's loss
depends only on its own filter, so the gradients do not mix).
Inputs live in the models' [0, 1] space; the defaults are the book's
(grey 128 + uniform noise up to 20, step 1, 40 steps, on a 0..255 scale).
"""
import dataclasses
from typing import Callable, Optional

import numpy as np
import tensorflow as tf

from components.explain.errors import ExplainError
from components.explain.model_graph import ModelGraph


@dataclasses.dataclass(frozen=True)
class FilterPatternConfig:
    steps: int = 40
    step_size: float = 1.0 / 255.0
    grey: float = 128.0 / 255.0
    noise: float = 20.0 / 255.0
    size: int = 150
    batch_size: int = 16
    """Filters ascended together; bounds memory on deep layers."""
    seed: int = 0


@dataclasses.dataclass(frozen=True)
class FilterPatterns:
    layer: str
    filter_indices: np.ndarray
    patterns: np.ndarray
    """float32 [n, size, size, channels]: the ascended inputs (deprocess them for display)."""
    initial_activation: np.ndarray
    """float32 [n]: each filter's mean activation on its starting image."""
    final_activation: np.ndarray
    """float32 [n]: each filter's mean activation on its pattern."""


def size_text(config: FilterPatternConfig) -> str:
    return f"{config.size}x{config.size}"


def _ascent_functions(feature_model, config: FilterPatternConfig):
    """(ascend, mean_activation), traced once per layer; `mask` [n, 1, 1, channels]
    picks each image's filter."""

    def mean_activation(images, mask):
        return tf.reduce_mean(tf.reduce_sum(feature_model(images, training=False) * mask, -1),
                              axis=(1, 2))

    @tf.function(reduce_retracing=True)
    def ascend(images, mask):
        for _ in tf.range(config.steps):
            with tf.GradientTape() as tape:
                tape.watch(images)
                loss = tf.reduce_sum(mean_activation(images, mask))
            grads = tape.gradient(loss, images)
            rms = tf.sqrt(tf.reduce_mean(tf.square(grads), axis=(1, 2, 3), keepdims=True))
            images = images + config.step_size * grads / (rms + 1e-5)
        return images

    return ascend, tf.function(mean_activation, reduce_retracing=True)


def filter_patterns(graph: ModelGraph, layer: str, filter_count: int = 64,
                    config: FilterPatternConfig = FilterPatternConfig(),
                    progress: Optional[Callable[[int, int], None]] = None) -> FilterPatterns:
    """Patterns of the first `filter_count` filters of a conv/pool layer.
    progress(done, total) is called after each batch of filters."""
    feature_model = graph.feature_model([layer], any_size=True)
    n_channels = feature_model.outputs[0].shape[-1]
    image_channels = feature_model.inputs[0].shape[-1]
    indices = np.arange(min(filter_count, n_channels))
    rng = np.random.default_rng(config.seed)
    ascend, mean_activation = _ascent_functions(feature_model, config)
    patterns, before, after = [], [], []
    for start in range(0, len(indices), config.batch_size):
        batch = indices[start:start + config.batch_size]
        images = (config.grey + rng.uniform(0, config.noise, (len(batch), config.size,
                                                               config.size, image_channels))).astype(np.float32)
        mask = tf.one_hot(batch, n_channels)[:, tf.newaxis, tf.newaxis, :]
        images = tf.convert_to_tensor(images)
        try:
            before.append(mean_activation(images, mask).numpy())
        except ValueError as error:
            raise ExplainError(f"filter patterns of {size_text(config)} pixels are too small for "
                               f"layer {layer!r} (its input shrinks below its kernel): "
                               "use a larger size") from error
        images = ascend(images, mask)
        after.append(mean_activation(images, mask).numpy())
        patterns.append(images.numpy())
        if progress:
            progress(start + len(batch), len(indices))
    return FilterPatterns(layer=layer, filter_indices=indices, patterns=np.concatenate(patterns),
                          initial_activation=np.concatenate(before),
                          final_activation=np.concatenate(after))

