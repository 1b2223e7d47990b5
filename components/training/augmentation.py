"""Data augmentation as one random affine transform per image (listing 5.14).

ImageDataGenerator's rotation, shifts, shear, zoom and flip are composed into a
single affine matrix per image and the whole batch is resampled at once
(bilinear, fill mode "nearest": edge pixels extend), instead of one resampling
per augmentation in Python.

The resampling is written as index arithmetic and one gather, compiled by XLA
into fused loops: the same result as TensorFlow's ImageProjectiveTransformV3 op
(within float rounding; tests/test_augmentation.py compares them), about 3x
faster on CPU, where that op's per-pixel kernel was most of the input
pipeline's time (benchmarks/RESULTS-training.md, "Input pipeline throughput").
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


def affine_warp(images: tf.Tensor, transforms: tf.Tensor) -> tf.Tensor:
    """Bilinear resampling of a float batch [batch, height, width, channels], each image by
    its own affine transform ([batch, 8] as random_affine_transforms makes, last two zero);
    coordinates outside the image take the nearest edge pixel."""
    shape = tf.shape(images)
    batch, height, width, channels = shape[0], shape[1], shape[2], shape[3]
    out_y, out_x = tf.meshgrid(tf.range(height, dtype=tf.float32), tf.range(width, dtype=tf.float32),
                               indexing="ij")
    out_x, out_y = tf.reshape(out_x, [1, -1]), tf.reshape(out_y, [1, -1])
    t = transforms[:, :, None]
    in_x = tf.clip_by_value(t[:, 0] * out_x + t[:, 1] * out_y + t[:, 2], 0.0, tf.cast(width - 1, tf.float32))
    in_y = tf.clip_by_value(t[:, 3] * out_x + t[:, 4] * out_y + t[:, 5], 0.0, tf.cast(height - 1, tf.float32))
    x0, y0 = tf.floor(in_x), tf.floor(in_y)
    dx, dy = (in_x - x0)[:, :, None], (in_y - y0)[:, :, None]
    x0, y0 = tf.cast(x0, tf.int32), tf.cast(y0, tf.int32)
    x1, y1 = tf.minimum(x0 + 1, width - 1), tf.minimum(y0 + 1, height - 1)
    # Rows of the batch flattened to [batch * height * width, channels]: one gather for all 4 corners.
    image_start = (tf.range(batch) * (height * width))[:, None]
    corners = tf.stack([image_start + y0 * width + x0, image_start + y0 * width + x1,
                        image_start + y1 * width + x0, image_start + y1 * width + x1])
    values = tf.gather(tf.reshape(images, [-1, channels]), tf.reshape(corners, [-1]))
    top_left, top_right, bottom_left, bottom_right = tf.unstack(
        tf.reshape(values, [4, batch, height * width, channels]))
    top = top_left + dx * (top_right - top_left)
    bottom = bottom_left + dx * (bottom_right - bottom_left)
    return tf.reshape(top + dy * (bottom - top), shape)


compiled_affine_warp = tf.function(affine_warp, jit_compile=True, autograph=False)
"""affine_warp as one XLA computation (also inside tf.data's map functions)."""


def augment_images(images: tf.Tensor, params: AugmentationParams, seed=None) -> tf.Tensor:
    """Randomly transforms a float batch [batch, height, width, channels]; same shape and range."""
    shape = tf.shape(images)
    transforms = random_affine_transforms(shape[0], shape[1], shape[2], params, seed)
    return compiled_affine_warp(images, transforms)
