"""Augmentation: one random affine transform per image, training batches only."""
import dataclasses

import numpy as np
import pytest
import tensorflow as tf

from components.preprocessing import decode_images
from components.training import data
from components.training.augmentation import affine_warp, augment_images, compiled_affine_warp, random_affine_transforms
from components.training.hparams import LISTING_5_14, AugmentationParams
from tests.test_preprocessing import sample_bytes

NO_AUGMENTATION = AugmentationParams(0.0, 0.0, 0.0, 0.0, 0.0, horizontal_flip=False)


@pytest.fixture(scope="module")
def images():
    return decode_images(tf.constant(sample_bytes(4)))


def test_shapes_dtype_and_range_are_kept(images):
    augmented = augment_images(images, LISTING_5_14).numpy()
    assert augmented.shape == tuple(images.shape) and augmented.dtype == np.float32
    assert augmented.min() >= 0.0 and augmented.max() <= 1.0
    assert not np.allclose(augmented, images.numpy(), atol=1e-3)


@pytest.mark.parametrize("warp", [affine_warp, compiled_affine_warp], ids=["eager", "xla"])
def test_warp_matches_tensorflows_projective_transform_op(images, warp):
    """The resampling is TensorFlow's own ImageProjectiveTransformV3 (bilinear, fill mode
    nearest) rewritten for XLA: both must give the same pixels for the same transforms,
    including the strong ones that reach far outside the image."""
    strong = AugmentationParams(rotation_range=90.0, width_shift_range=0.5, height_shift_range=0.5,
                                shear_range=0.5, zoom_range=0.5, horizontal_flip=True)
    batch = tf.concat([images, images[:, ::-1], tf.random.stateless_uniform([3, 150, 150, 3], seed=[1, 2])], 0)
    for params, seed in ((LISTING_5_14, 1), (strong, 2)):
        transforms = random_affine_transforms(batch.shape[0], 150, 150, params, seed=seed)
        expected = tf.raw_ops.ImageProjectiveTransformV3(
            images=batch, transforms=transforms, output_shape=[150, 150], fill_value=0.0,
            interpolation="BILINEAR", fill_mode="NEAREST")
        np.testing.assert_allclose(warp(batch, transforms).numpy(), expected.numpy(), atol=1e-4)


def test_zero_ranges_are_the_identity(images):
    np.testing.assert_allclose(augment_images(images, NO_AUGMENTATION).numpy(), images.numpy(), atol=1e-5)


def test_flip_only_gives_the_image_or_its_mirror(images):
    flip_only = dataclasses.replace(NO_AUGMENTATION, horizontal_flip=True)
    mirrored = tf.image.flip_left_right(images).numpy()
    seen = set()
    for _ in range(5):
        for out, original, mirror in zip(augment_images(images, flip_only).numpy(), images.numpy(), mirrored):
            is_same, is_mirror = np.allclose(out, original, atol=1e-5), np.allclose(out, mirror, atol=1e-5)
            assert is_same or is_mirror
            seen.add(is_mirror)
    assert seen == {True, False}


def test_shift_fills_with_nearest_pixels_not_black():
    white = tf.ones([2, 150, 150, 3])
    shifted = augment_images(white, dataclasses.replace(NO_AUGMENTATION, width_shift_range=0.4,
                                                        height_shift_range=0.4, rotation_range=40))
    np.testing.assert_allclose(shifted.numpy(), 1.0, atol=1e-5)


def test_each_image_gets_its_own_transform(images):
    same = tf.repeat(images[:1], 6, axis=0)
    augmented = augment_images(same, LISTING_5_14).numpy()
    differences = [np.abs(augmented[0] - augmented[i]).mean() for i in range(1, 6)]
    assert min(differences) > 1e-3


def _decoded(images):
    labels = tf.zeros([images.shape[0]])
    return tf.data.Dataset.from_tensor_slices((images, labels))


def test_evaluation_batches_are_never_augmented(images):
    batches = list(data.evaluation_dataset(_decoded(images), batch_size=4))
    np.testing.assert_array_equal(batches[0][0].numpy(), images.numpy())


def test_training_batches_are_augmented(images):
    dataset = data.training_dataset(_decoded(images), batch_size=4, shuffle_buffer=1,
                                    augmentation=LISTING_5_14, repeat=True)
    batch, labels = next(iter(dataset))
    assert batch.shape == images.shape and labels.shape == (4,)
    assert not np.allclose(batch.numpy(), images.numpy(), atol=1e-3)
    unaugmented = data.training_dataset(_decoded(images), batch_size=4, shuffle_buffer=1,
                                        augmentation=None, repeat=False)
    np.testing.assert_array_equal(next(iter(unaugmented))[0].numpy(), images.numpy())
