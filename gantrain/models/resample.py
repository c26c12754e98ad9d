"""Interpolative 2x resampling with a low-pass FIR filter, as R3GAN (Huang et al. 2024) and
StyleGAN2's ``upfirdn2d`` do it: each channel on its own, no learned weights.

The taps ``[1, 2, 1]`` are convolved with the box ``[1, 1]`` (the interpolating filter of a factor
of two), giving ``[1, 3, 3, 1]``; the 2-D kernel is its outer product, normalised to sum 1.
Upsampling inserts a zero after every pixel, pads (2, 1) and filters with 4x the kernel (so a
constant map stays constant); downsampling pads (1, 1) and filters with stride 2. Both keep
sizes exact: H -> 2H and 2H -> H.

Usage: ``Upsample([1, 2, 1])(x)`` on (B, H, W, C) -> (B, 2H, 2W, C); ``Downsample([1, 2, 1])``.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf


def lowpass_kernel(taps: list[float]) -> np.ndarray:
    """The (K+1, K+1) kernel of ``taps`` (K of them) convolved with [1, 1], summing to 1."""
    row = np.convolve(np.asarray(taps, np.float64), [1.0, 1.0])
    kernel = np.outer(row, row)
    return (kernel / kernel.sum()).astype(np.float32)


class _Resample(keras.layers.Layer):
    """Shared by both directions: the kernel as a constant, one copy per channel."""

    def __init__(self, taps: list[float], **kwargs):
        super().__init__(**kwargs)
        self.taps = [float(t) for t in taps]

    def filter(self, x: tf.Tensor, gain: float, pads: tuple[int, int], stride: int) -> tf.Tensor:
        kernel = lowpass_kernel(self.taps) * gain
        channels = x.shape[-1]
        depthwise = tf.constant(np.tile(kernel[:, :, None, None], (1, 1, channels, 1)), dtype=x.dtype)
        x = tf.pad(x, [[0, 0], pads, pads, [0, 0]])
        return tf.nn.depthwise_conv2d(x, depthwise, [1, stride, stride, 1], "VALID")

    def get_config(self):
        return {**super().get_config(), "taps": self.taps}


@keras.saving.register_keras_serializable("gantrain")
class Upsample(_Resample):
    """(B, H, W, C) -> (B, 2H, 2W, C)."""

    def call(self, x):
        batch, height, width, channels = tf.unstack(tf.shape(x))
        # Zero insertion: every pixel followed by a zero, along both axes.
        spread = tf.pad(x[:, :, None, :, None, :], [[0, 0], [0, 0], [0, 1], [0, 0], [0, 1], [0, 0]])
        spread = tf.reshape(spread, [batch, 2 * height, 2 * width, channels])
        size = len(self.taps) + 1
        return self.filter(spread, 4.0, ((size + 1) // 2, (size - 2) // 2), 1)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, 2 * height, 2 * width, channels)


@keras.saving.register_keras_serializable("gantrain")
class Downsample(_Resample):
    """(B, 2H, 2W, C) -> (B, H, W, C)."""

    def call(self, x):
        size = len(self.taps) + 1
        return self.filter(x, 1.0, ((size - 1) // 2, (size - 2) // 2), 2)

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height // 2, width // 2, channels)
