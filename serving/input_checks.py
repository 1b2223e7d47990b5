"""Checks of this server's own, before TensorFlow decodes anything: images
under the contract's input aliases must be JPEG or PNG within the pixel
limit, read from their headers (serving/image_header.py)."""
from typing import Dict, Iterable

import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from components import contract
from serving.errors import invalid_argument
from serving.image_header import size_problem


def check_images(where: str, images: Iterable[bytes], max_pixels: int) -> None:
    for index, data in enumerate(images):
        problem = size_problem(data, max_pixels)
        if problem:
            raise invalid_argument(f"{where}[{index}]: {problem}")


def check_examples(where: str, serialized: Iterable[bytes], max_pixels: int) -> None:
    """Each value must be a tf.Example; its contract image is checked like image bytes."""
    for index, data in enumerate(serialized):
        example = tf.train.Example()
        try:
            example.ParseFromString(data)
        except DecodeError:
            raise invalid_argument(f"{where}[{index}]: not a serialized tf.Example") from None
        feature = example.features.feature.get(contract.IMAGE_KEY)
        if feature is not None:
            check_images(f"{where}[{index}].{contract.IMAGE_KEY}", feature.bytes_list.value, max_pixels)


def check_contract_inputs(inputs: Dict[str, np.ndarray], max_pixels: int) -> None:
    """Image bytes and serialized examples under the contract's aliases."""
    for alias, array in inputs.items():
        if array.dtype != object:
            continue
        if alias == contract.SERVING_INPUT_KEY:
            check_images(alias, array.flat, max_pixels)
        elif alias == contract.EXAMPLES_INPUT_KEY:
            check_examples(alias, array.flat, max_pixels)
