"""The test images scored through the exported serving signature (image bytes
in), as a client of TF Serving would see them: the report's worst-classified
images and its check that serving and TFMA agree."""
import dataclasses
from typing import List, Sequence

import numpy as np
import tensorflow as tf

from components import contract
from components.formats import examples as examples_format

SERVING_BATCH_SIZE = 32


@dataclasses.dataclass(frozen=True)
class ScoredImage:
    image: examples_format.LabelledImage
    probability_of_label: float
    predicted: int
    """The top class (argmax of the served probabilities)."""


def score_test_images(saved_model_dir: str, test_split_uri: str) -> List[ScoredImage]:
    """P(true class) of every test image through serving_default (image bytes in)."""
    serve = tf.saved_model.load(saved_model_dir).signatures[contract.SERVING_SIGNATURE]
    images = list(examples_format.read_images(test_split_uri))
    scored = []
    for start in range(0, len(images), SERVING_BATCH_SIZE):
        batch = images[start:start + SERVING_BATCH_SIZE]
        outputs = serve(**{contract.SERVING_INPUT_KEY: tf.constant([i.image_bytes for i in batch])})
        probabilities = outputs[contract.PROBABILITIES_KEY].numpy()
        scored += [ScoredImage(image, float(probabilities[row, image.label]),
                               int(np.argmax(probabilities[row])))
                   for row, image in enumerate(batch)]
    return scored


def worst_classified(scored: Sequence[ScoredImage], count: int) -> List[ScoredImage]:
    """Largest cross-entropy first: lowest probability given to the true class."""
    return sorted(scored, key=lambda s: s.probability_of_label)[:count]
