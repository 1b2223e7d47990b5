"""Data augmentation as one random affine transform per image (listing 5.14).

ImageDataGenerator's rotation, shifts, shear, zoom and flip are composed into a
single projective matrix per image and applied to the whole batch by one
ImageProjectiveTransformV3 op (bilinear, fill mode "nearest"), instead of one
resampling per augmentation in Python.
"""
import math

import tensorflow as tf

from components.training.hparams import AugmentationParams


def random_affine_transforms(batch_size, height, width, params: AugmentationParams,
                             seed=None) -> tf.Tensor:
    """[batch, 8] projective transforms mapping output pixels to input pixels."""
    rng = tf.random.Generator.from_seed(seed) if seed is not None else None

    def uniform(low, high):
        shape = [batch_size]
        if rng is not None:
            return rng.uniform(shape, low, high)
        return tf.random.uniform(shape, low, high)

    height = tf.cast(height, tf.float32)
    width = tf.cast(width, tf.float32)
    rotation = math.radians(params.rotation_range)
    theta = uniform(-rotation, rotation)
    shear = uniform(-params.shear_range, params.shear_range)
    zoom_x = uniform(1.0 - params.zoom_range, 1.0 + params.zoom_range)
    zoom_y = uniform(1.0 - params.zoom_range, 1.0 + params.zoom_range)
    shift_x = uniform(-params.width_shift_range, params.width_shift_range) * width
    shift_y = uniform(-params.height_shift_range, params.height_shift_range) * height
    if params.horizontal_flip:
        flip = tf.where(uniform(0.0, 1.0) < 0.5, -1.0, 1.0)
    else:
        flip = tf.ones([batch_size])

    # M = Rotation @ Shear @ Zoom @ Flip (2x2, acting on coordinates centred on the image).
    cos, sin = tf.cos(theta), tf.sin(theta)
    shear_x, shear_y = -tf.sin(shear), tf.cos(shear)
    a00 = cos * zoom_x
    a01 = (cos * shear_x - sin * shear_y) * zoom_y
    a10 = sin * zoom_x
    a11 = (sin * shear_x + cos * shear_y) * zoom_y
    a00, a10 = a00 * flip, a10 * flip
    center_x = (width - 1.0) / 2.0
    center_y = (height - 1.0) / 2.0
    offset_x = center_x - a00 * center_x - a01 * center_y + shift_x
    offset_y = center_y - a10 * center_x - a11 * center_y + shift_y
    zeros = tf.zeros([batch_size])
    return tf.stack([a00, a01, offset_x, a10, a11, offset_y, zeros, zeros], axis=1)


def augment_images(images: tf.Tensor, params: AugmentationParams, seed=None) -> tf.Tensor:
    """Randomly transforms a float batch [batch, height, width, channels]; same shape and range."""
    shape = tf.shape(images)
    transforms = random_affine_transforms(shape[0], shape[1], shape[2], params, seed)
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images, transforms=transforms, output_shape=shape[1:3],
        fill_value=0.0, interpolation="BILINEAR", fill_mode="NEAREST")
