"""A small TF2 SavedModel with the signatures TF Serving's own test models
have (y = 0.5 x + 2 as predict, classify and regress signatures), built
here so the serving tests need no file from TF Serving's tree.

Signatures (every one with TF2's predict method name):
- serving_default: x float32 [None, 1] -> y float32
- classify_x_to_y: inputs string [None] (tf.Examples with float feature x) -> scores float32 [None, 1]
- regress_x_to_y: inputs string [None] -> outputs float32 [None, 1]
- echo: text string [None] -> text_bytes, text_out string (the same strings)
"""
import os

import tensorflow as tf

HALF_PLUS_TWO = "half_plus_two"
VERSION = 123
VERSION_FOLDER = "00000123"
ECHO_SIGNATURE = "echo"


class _HalfPlusTwo(tf.Module):
    def __init__(self):
        super().__init__()
        self.a = tf.Variable(0.5)
        self.b = tf.Variable(2.0)

    def _on_examples(self, serialized):
        features = tf.io.parse_example(serialized, {"x": tf.io.FixedLenFeature([1], tf.float32)})
        return self.a * features["x"] + self.b

    @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
    def predict(self, x):
        return {"y": self.a * x + self.b}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def classify(self, inputs):
        return {"scores": self._on_examples(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="inputs")])
    def regress(self, inputs):
        return {"outputs": self._on_examples(inputs)}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="text")])
    def echo(self, text):
        return {"text_bytes": tf.identity(text), "text_out": tf.identity(text)}


def export_half_plus_two(model_base_path: str) -> str:
    """Writes the model as version 123 in a zero-padded folder, as TF Serving's
    test models are laid out; returns the base path."""
    module = _HalfPlusTwo()
    tf.saved_model.save(module, os.path.join(model_base_path, VERSION_FOLDER), signatures={
        "serving_default": module.predict, "classify_x_to_y": module.classify,
        "regress_x_to_y": module.regress, ECHO_SIGNATURE: module.echo})
    return model_base_path


def export_half_plus_two_tf1(model_base_path: str) -> str:
    """The same model as a TF1 graph (placeholders, a session, SavedModelBuilder),
    as TF Serving's own test models were exported: version 123, predict
    signature serving_default only."""
    v1 = tf.compat.v1
    with tf.Graph().as_default(), v1.Session() as session:
        x = v1.placeholder(tf.float32, [None, 1], name="x")
        a, b = v1.Variable(0.5, name="a"), v1.Variable(2.0, name="b")
        y = tf.add(a * x, b, name="y")
        session.run(v1.global_variables_initializer())
        builder = v1.saved_model.Builder(os.path.join(model_base_path, VERSION_FOLDER))
        signature = v1.saved_model.predict_signature_def(inputs={"x": x}, outputs={"y": y})
        builder.add_meta_graph_and_variables(session, [v1.saved_model.SERVING],
                                             signature_def_map={"serving_default": signature})
        builder.save()
    return model_base_path
