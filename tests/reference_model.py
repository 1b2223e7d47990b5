"""Exports a SavedModel that honours the serving contract around any image
classifier, so the server and client can be tested without running the
pipeline (the pipeline's Trainers export the real models with the same
signature).

Signatures:
- serving_default (contract): image_bytes tf.string [None] (raw JPEG/PNG)
  -> probabilities float32 [None, n_classes], classes tf.string [None],
  class_ids int64 [None].
- classify: TF Serving's classification API: serialized tf.Example with the
  contract's image feature under 'inputs' -> classes tf.string [None, n_classes],
  scores float32 [None, n_classes]. TF2's saver writes every signature with the
  'predict' method; the method name is set to 'classify' in saved_model.pb
  after saving, so that the model also answers Classify under TF Serving's
  --enable_signature_method_name_check.
"""
import os
from typing import Callable, Sequence

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2

from components import contract
from components.preprocessing import decode_images
from serving.example_inference import CLASSIFY_INPUTS, CLASSIFY_OUTPUT_CLASSES, CLASSIFY_OUTPUT_SCORES
from serving.predict import CLASSIFY_METHOD
from serving.servable import SAVED_MODEL_FILE

CLASSIFY_SIGNATURE = "classify"


class TinyClassifier(tf.Module):
    """A few hundred weights: 5x5 average colours -> softmax. Seeded, so that two
    seeds give two distinguishable model versions."""

    def __init__(self, n_classes: int, seed: int):
        super().__init__()
        inputs = 5 * 5 * contract.IMAGE_CHANNELS
        self.kernel = tf.Variable(tf.random.stateless_normal((inputs, n_classes), seed=(seed, 0)))
        self.bias = tf.Variable(tf.random.stateless_normal((n_classes,), seed=(seed, 1)))

    def __call__(self, images):
        pooled = tf.image.resize(images, (5, 5), method="area")
        flat = tf.reshape(pooled, (-1, self.kernel.shape[0]))
        return tf.nn.softmax(tf.matmul(flat, self.kernel) + self.bias)


class _ContractModule(tf.Module):
    def __init__(self, classifier: Callable, class_names: Sequence[str]):
        super().__init__()
        self.classifier = classifier
        self.class_names = tf.constant(list(class_names))

    def _probabilities(self, images):
        probabilities = self.classifier(images)
        if probabilities.shape[-1] == 1:  # one sigmoid unit, as in the book: P(class 1)
            probabilities = tf.concat([1.0 - probabilities, probabilities], axis=-1)
        return tf.cast(probabilities, tf.float32)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(self, image_bytes):
        probabilities = self._probabilities(decode_images(image_bytes))
        class_ids = tf.argmax(probabilities, axis=-1)
        return {contract.PROBABILITIES_KEY: probabilities,
                contract.CLASSES_KEY: tf.gather(self.class_names, class_ids),
                contract.CLASS_IDS_KEY: class_ids}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def classify(self, inputs):
        features = tf.io.parse_example(inputs, {contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        scores = self._probabilities(decode_images(features[contract.IMAGE_KEY]))
        classes = tf.tile(self.class_names[tf.newaxis, :], [tf.shape(scores)[0], 1])
        return {CLASSIFY_OUTPUT_CLASSES: classes, CLASSIFY_OUTPUT_SCORES: scores}


def _set_method_name(export_dir: str, signature_name: str, method_name: str) -> None:
    path = os.path.join(export_dir, SAVED_MODEL_FILE)
    saved_model = saved_model_pb2.SavedModel()
    with open(path, "rb") as model_file:
        saved_model.ParseFromString(model_file.read())
    for meta_graph in saved_model.meta_graphs:
        meta_graph.signature_def[signature_name].method_name = method_name
    with open(path, "wb") as model_file:
        model_file.write(saved_model.SerializeToString())


def export_reference_model(export_dir: str, classifier: Callable,
                           class_names: Sequence[str] = contract.CATS_VS_DOGS_CLASSES) -> str:
    """Saves `classifier` (float32 images [batch, 150, 150, 3] in [0, 1] ->
    probabilities [batch, n_classes], or [batch, 1] for a sigmoid) behind the
    contract's signatures at export_dir; returns export_dir."""
    module = _ContractModule(classifier, class_names)
    serve = module.serve.get_concrete_function()
    classify = module.classify.get_concrete_function()
    # Name the signatures' inputs by the keyword names the contract uses.
    signatures = {
        contract.SERVING_SIGNATURE: tf.function(
            lambda image_bytes: serve(image_bytes),
            input_signature=[tf.TensorSpec([None], tf.string, name=contract.SERVING_INPUT_KEY)]),
        CLASSIFY_SIGNATURE: tf.function(
            lambda inputs: classify(inputs),
            input_signature=[tf.TensorSpec([None], tf.string, name=CLASSIFY_INPUTS)]),
    }
    tf.saved_model.save(module, export_dir, signatures=signatures)
    _set_method_name(export_dir, CLASSIFY_SIGNATURE, CLASSIFY_METHOD)
    return export_dir
