"""The marker model of the evaluation and push tests: a small real model
exported with the contract's signatures, the marked images it scores, blessing
folders and the evaluation gate's pipeline around them.

The model is not trained: its P(class 1) is the grey level of a marker that
write_marked_images paints into the top-left corner of the sample's photos, so
every prediction, and so its accuracy, is fixed when the images are written
and holds on any CPU (training a tiny model gives other results on other CPUs)."""
import dataclasses
import os
from typing import List

import numpy as np
import tensorflow as tf

from components import contract, preprocessing
from tests.examples_artifacts import SAMPLE_DIR, sample_files

# The marker covers this share of each photo's width and height; the model reads
# a smaller corner of the resized image, so resizing never mixes in the photo.
MARKER_SHARE = 0.25
MARKER_READ_SHARE = 0.2
# Every WRONG_EVERY-th image of each class gets a marker on the wrong side of 0.5.
WRONG_EVERY = 4
MARKED_ACCURACY = 1 - 1 / WRONG_EVERY


def write_blessing(uri: str, blessed: bool, failures=()) -> str:
    """A ModelBlessing folder as the Evaluator leaves it (marker file + decision)."""
    from components.evaluation import decision
    os.makedirs(uri, exist_ok=True)
    open(os.path.join(uri, "BLESSED" if blessed else "NOT_BLESSED"), "w").close()
    decision.write_decision(uri, decision.BlessingDecision(
        blessed, False, "test: no baseline", failures=list(failures)))
    return uri


@dataclasses.dataclass(frozen=True)
class MarkedImage:
    path: str
    label: int
    probability: float
    """P(class 1) that marker_model gives this image."""


def marker_probability(label: int, index: int, count: int) -> float:
    """The index-th of `count` images of a class: confidences spread over 0.55..0.95
    (so the ranking of worst images and the AUC are not degenerate); every
    WRONG_EVERY-th image on the wrong side. Rounded to the grey levels a PNG holds."""
    margin = 0.05 + 0.4 * index / max(1, count - 1)
    says_class_1 = (label == 1) != (index % WRONG_EVERY == WRONG_EVERY - 1)
    return round(255 * (0.5 + margin if says_class_1 else 0.5 - margin)) / 255


def write_marked_images(image_root: str, splits=(contract.TEST_SPLIT,)) -> List[MarkedImage]:
    """The sample's photos with a grey marker painted top-left, as PNG files in
    <image_root>/<split>/<class>/; on the test split marker_model's accuracy is
    exactly MARKED_ACCURACY."""
    from PIL import Image
    marked = []
    for split in splits:
        files = sample_files(split)
        for label in sorted({label for _, label in files}):
            paths = [path for path, path_label in files if path_label == label]
            for index, path in enumerate(paths):
                probability = marker_probability(label, index, len(paths))
                image = Image.open(path).convert("RGB")
                grey = round(probability * 255)
                image.paste((grey, grey, grey), (0, 0, int(np.ceil(image.width * MARKER_SHARE)),
                                                 int(np.ceil(image.height * MARKER_SHARE))))
                target = os.path.join(image_root, os.path.relpath(path, SAMPLE_DIR))
                target = os.path.splitext(target)[0] + ".png"
                os.makedirs(os.path.dirname(target), exist_ok=True)
                image.save(target)
                marked.append(MarkedImage(target, label, probability))
    return marked


def marker_model():
    """A Keras model whose P(class 1) is the mean grey level of the image's top-left
    corner (the marker write_marked_images paints): fixed weights, no training."""
    import keras
    read = int(contract.IMAGE_HEIGHT * MARKER_READ_SHARE), int(contract.IMAGE_WIDTH * MARKER_READ_SHARE)
    return keras.Sequential([
        keras.Input((contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, contract.IMAGE_CHANNELS)),
        keras.layers.Cropping2D(((0, contract.IMAGE_HEIGHT - read[0]), (0, contract.IMAGE_WIDTH - read[1]))),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(1, kernel_initializer=keras.initializers.Constant(1 / contract.IMAGE_CHANNELS),
                           bias_initializer="zeros"),
    ])


class ExportModule(tf.Module):
    """The contract's two signatures around a Keras model; invert=True flips
    P(class 1), which turns a model of accuracy a into one of accuracy 1 - a."""

    def __init__(self, model, invert: bool = False):
        super().__init__()
        self.model = model
        self.invert = invert
        self.class_names = tf.constant(list(contract.CATS_VS_DOGS_CLASSES))

    def _predict(self, image_bytes):
        positive = tf.reshape(self.model(preprocessing.decode_images(image_bytes)), [-1])
        if self.invert:
            positive = 1.0 - positive
        class_ids = tf.cast(positive >= 0.5, tf.int64)
        return positive, {
            contract.PROBABILITIES_KEY: tf.stack([1.0 - positive, positive], axis=1),
            contract.CLASSES_KEY: tf.gather(self.class_names, class_ids),
            contract.CLASS_IDS_KEY: class_ids,
        }

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_image_bytes(self, image_bytes):
        return self._predict(image_bytes)[1]

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve_examples(self, examples):
        features = tf.io.parse_example(examples, {
            contract.IMAGE_KEY: tf.io.FixedLenFeature([], tf.string)})
        positive, outputs = self._predict(features[contract.IMAGE_KEY])
        return {**outputs, contract.POSITIVE_PROBABILITY_KEY: positive}


def export_model(model, export_dir: str, invert: bool = False) -> str:
    module = ExportModule(model, invert)
    tf.saved_model.save(module, export_dir, signatures={
        contract.SERVING_SIGNATURE: module.serve_image_bytes.get_concrete_function(),
        contract.EXAMPLES_SIGNATURE: module.serve_examples.get_concrete_function(),
    })
    return export_dir


def direct_predictions(saved_model_dir: str, image_root: str = SAMPLE_DIR, split: str = contract.TEST_SPLIT):
    """(P(class 1), labels) from the SavedModel's serving signature on the image files."""
    serve = tf.saved_model.load(saved_model_dir).signatures[contract.SERVING_SIGNATURE]
    files = sample_files(split, image_root)
    images = tf.constant([open(p, "rb").read() for p, _ in files])
    probabilities = serve(**{contract.SERVING_INPUT_KEY: images})[contract.PROBABILITIES_KEY].numpy()
    return probabilities[:, 1], np.array([label for _, label in files])
