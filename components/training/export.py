"""Export: a tf.Module SavedModel serving raw image bytes through Transform's graph.

Signatures (components/contract.py):
- serving_default(image_bytes: string [None]) -> probabilities, classes, class_ids
- serving_examples(examples: serialized tf.Example [None]) -> the same, plus
  `probability` (P(class 1)) for two-class models, for TFMA.
The trained Keras model is saved beside it at contract.KERAS_MODEL_PATH.
"""
import json
import os
from typing import Dict, Sequence

import tensorflow as tf

from components import contract


def _as_raw_feature(values: tf.Tensor, spec) -> tf.Tensor:
    """Give a [batch] tensor the shape the raw schema declares ([batch] or [batch, 1])."""
    return tf.reshape(values, [-1] + list(spec.shape))


class ServingModule(tf.Module):
    """Transform graph (tf_keras layer, called here, not inside the Keras 3 model) + model."""

    def __init__(self, model, tft_layer, raw_feature_spec: Dict, class_names: Sequence[str]):
        super().__init__()
        if len(class_names) < 2:
            raise ValueError(f"need at least two class names, got {list(class_names)}")
        self.model = model
        self.tft_layer = tft_layer
        self._image_spec = raw_feature_spec[contract.IMAGE_KEY]
        self._class_names = tf.constant(list(class_names), tf.string)
        self._n_classes = len(class_names)
        units = model.outputs[0].shape[-1]
        self._binary = len(class_names) == 2 and units == 1
        if not self._binary and units != len(class_names):
            raise ValueError(f"the model outputs {units} scores but the data has {len(class_names)} "
                             f"classes {list(class_names)}: expected one sigmoid unit for two "
                             "classes or one softmax unit per class")

    def _outputs(self, image_bytes: tf.Tensor) -> Dict[str, tf.Tensor]:
        # An empty batch gets empty outputs without reaching the model, whose
        # convolutions fail on zero images ("input depth must be evenly divisible").
        return tf.cond(tf.size(image_bytes) > 0, lambda: self._model_outputs(image_bytes), self._no_outputs)

    def _no_outputs(self) -> Dict[str, tf.Tensor]:
        return {
            contract.PROBABILITIES_KEY: tf.zeros([0, self._n_classes], tf.float32),
            contract.CLASS_IDS_KEY: tf.zeros([0], tf.int64),
            contract.CLASSES_KEY: tf.zeros([0], tf.string),
        }

    def _model_outputs(self, image_bytes: tf.Tensor) -> Dict[str, tf.Tensor]:
        raw = {contract.IMAGE_KEY: _as_raw_feature(image_bytes, self._image_spec)}
        images = self.tft_layer(raw)[contract.TRANSFORMED_IMAGE_KEY]
        scores = self.model(images, training=False)
        if self._binary:
            positive = tf.reshape(scores, [-1])
            probabilities = tf.stack([1.0 - positive, positive], axis=1)
        else:
            probabilities = scores
        class_ids = tf.argmax(probabilities, axis=1, output_type=tf.int64)
        return {
            contract.PROBABILITIES_KEY: tf.cast(probabilities, tf.float32),
            contract.CLASS_IDS_KEY: class_ids,
            contract.CLASSES_KEY: tf.gather(self._class_names, class_ids),
        }

    # No Python control flow here: autograph off, so tracing never re-reads the source file.
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.SERVING_INPUT_KEY)],
                 autograph=False)
    def serve_image_bytes(self, image_bytes):
        return self._outputs(image_bytes)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=contract.EXAMPLES_INPUT_KEY)],
                 autograph=False)
    def serve_examples(self, examples):
        features = tf.io.parse_example(examples, {contract.IMAGE_KEY: self._image_spec})
        outputs = self._outputs(tf.reshape(features[contract.IMAGE_KEY], [-1]))
        if self._binary:
            outputs[contract.POSITIVE_PROBABILITY_KEY] = outputs[contract.PROBABILITIES_KEY][:, 1]
        return outputs


def export_model(model, tft_layer, raw_feature_spec, class_names, export_dir: str) -> str:
    """Writes the SavedModel (both signatures) and the Keras model into export_dir."""
    module = ServingModule(model, tft_layer, raw_feature_spec, class_names)
    signatures = {
        contract.SERVING_SIGNATURE: module.serve_image_bytes.get_concrete_function(),
        contract.EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    keras_path = os.path.join(export_dir, contract.KERAS_MODEL_PATH)
    tf.io.gfile.makedirs(os.path.dirname(keras_path))
    model.save(keras_path)
    with tf.io.gfile.GFile(os.path.join(export_dir, contract.KERAS_CLASS_NAMES_PATH), "w") as file:
        json.dump(list(class_names), file)
    return export_dir
