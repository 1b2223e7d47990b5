"""Grad-CAM (book 5.4.3): where in the image the evidence for a class lies.

The class score's gradient with respect to the last conv layer's output,
averaged over space, weighs that layer's channels; the weighted sum, kept
positive and scaled to [0, 1], is the heatmap. A one-unit sigmoid head scores
class 1 as p and class 0 as 1 - p; a softmax head scores class k as p[k].
"""
import dataclasses
from typing import Optional, Sequence

import numpy as np
import tensorflow as tf

from components.explain.errors import ClassIndexError
from components.explain.model_graph import ModelGraph


@dataclasses.dataclass(frozen=True)
class GradCamResult:
    heatmap: np.ndarray
    """float32 [h, w] in [0, 1] at the conv layer's resolution."""
    class_index: int
    class_score: float
    """The explained class's probability."""
    probabilities: np.ndarray
    """float32 [n_classes] (two entries, 1 - p and p, for a sigmoid head)."""


def class_probabilities(predictions: tf.Tensor) -> tf.Tensor:
    """Model output [batch, units] -> per-class probabilities [batch, n_classes]."""
    if predictions.shape[-1] == 1:
        return tf.concat([1.0 - predictions, predictions], axis=-1)
    return predictions


class GradCam:
    """Grad-CAM for one model and conv layer (the last conv layer by default)."""

    def __init__(self, graph: ModelGraph, conv_layer: Optional[str] = None):
        self.conv_layer = conv_layer or graph.last_conv_layer
        self._model = graph.gradcam_model(self.conv_layer)
        units = self._model.outputs[-1].shape[-1]
        self.n_classes = 2 if units == 1 else units
        self._heatmaps = tf.function(self._heatmaps_graph, reduce_retracing=True)

    def _heatmaps_graph(self, images, requested):
        with tf.GradientTape() as tape:
            conv_output, predictions = self._model(images, training=False)
            probabilities = class_probabilities(predictions)
            predicted = tf.argmax(probabilities, axis=-1, output_type=tf.int32)
            chosen = tf.where(requested >= 0, requested, predicted)
            scores = tf.gather(probabilities, chosen, axis=1, batch_dims=1)
        grads = tape.gradient(scores, conv_output)
        # Mixed-precision models give bfloat16/float16 conv outputs: the map is float32.
        conv_output, grads = tf.cast(conv_output, tf.float32), tf.cast(grads, tf.float32)
        channel_weights = tf.reduce_mean(grads, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(conv_output * channel_weights, axis=-1))
        peak = tf.reduce_max(cam, axis=(1, 2), keepdims=True)
        cam = tf.math.divide_no_nan(cam, peak)
        return cam, chosen, scores, probabilities

    def explain_batch(self, images: np.ndarray,
                      class_indices: Optional[Sequence[Optional[int]]] = None):
        """Grad-CAM of model inputs [n, H, W, 3]; class per image (None: the predicted one)."""
        n = len(images)
        wanted = list(class_indices) if class_indices is not None else [None] * n
        for c in wanted:
            if c is not None and not 0 <= int(c) < self.n_classes:
                raise ClassIndexError(
                    f"class index {c} is out of range: the model has {self.n_classes} classes "
                    f"(0..{self.n_classes - 1})")
        requested = [-1 if c is None else int(c) for c in wanted]
        cams, chosen, scores, probabilities = self._heatmaps(
            tf.convert_to_tensor(images, tf.float32), tf.constant(requested, tf.int32))
        return [GradCamResult(heatmap=cam, class_index=int(k), class_score=float(s),
                              probabilities=p)
                for cam, k, s, p in zip(cams.numpy(), chosen.numpy(), scores.numpy(),
                                        probabilities.numpy())]

    def explain(self, image: np.ndarray, class_index: Optional[int] = None) -> GradCamResult:
        return self.explain_batch(image[np.newaxis], [class_index])[0]
