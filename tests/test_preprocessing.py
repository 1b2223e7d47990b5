"""Transform's preprocessing_fn on real images from data/sample."""
import glob
import os

import numpy as np
import pytest
import tensorflow as tf

from components import contract
from components.preprocessing import decode_images, preprocessing_fn

SAMPLE = os.path.join(os.path.dirname(os.path.dirname(__file__)), "data", "sample")


def sample_bytes(n=3):
    files = sorted(glob.glob(os.path.join(SAMPLE, contract.TEST_SPLIT, "*", "*.jpg")))[:n]
    assert files, "data/sample is missing"
    return [open(f, "rb").read() for f in files]


def test_jpeg_batch_becomes_150x150x3_in_unit_range():
    raw = sample_bytes(3)
    outputs = preprocessing_fn({contract.IMAGE_KEY: tf.constant(raw)[:, None],
                                contract.LABEL_KEY: tf.constant([[0], [1], [1]], tf.int64)})
    images = outputs[contract.TRANSFORMED_IMAGE_KEY].numpy()
    assert images.shape == (3, contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 3)
    assert images.dtype == np.float32
    assert 0.0 <= images.min() and images.max() <= 1.0 and images.max() > 0.5
    assert outputs[contract.LABEL_KEY].numpy().tolist() == [0, 1, 1]


def test_png_and_jpeg_of_the_same_pixels_agree():
    jpeg = sample_bytes(1)[0]
    png = tf.io.encode_png(tf.io.decode_jpeg(jpeg)).numpy()
    images = decode_images(tf.constant([jpeg, png])).numpy()
    np.testing.assert_allclose(images[0], images[1], atol=1e-5)


def test_grayscale_image_gets_three_channels():
    gray = tf.io.encode_png(tf.image.rgb_to_grayscale(tf.io.decode_jpeg(sample_bytes(1)[0]))).numpy()
    image = decode_images(tf.constant([gray])).numpy()[0]
    assert image.shape == (contract.IMAGE_HEIGHT, contract.IMAGE_WIDTH, 3)
    np.testing.assert_allclose(image[..., 0], image[..., 2])


def test_undecodable_image_raises_a_clear_error():
    with pytest.raises(tf.errors.InvalidArgumentError, match="neither JPEG nor PNG"):
        decode_images(tf.constant([sample_bytes(1)[0], b"this is not an image"]))


def test_truncated_jpeg_raises_invalid_argument():
    with pytest.raises(tf.errors.InvalidArgumentError):
        decode_images(tf.constant([sample_bytes(1)[0][:200]]))
