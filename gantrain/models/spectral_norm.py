"""Spectral normalization (Miyato et al. 2018) for Dense and Conv2D layers: ``model.d_spectral_norm``.

The layer computes with ``W / sigma(W)``, where ``sigma`` is the largest singular value of the
kernel reshaped to (fan_in, units), estimated by one power iteration per training call from a
persistent vector ``u``. The division is part of the forward graph, so gradients account for
sigma's dependence on W, as in the paper. (``keras.layers.SpectralNormalization`` instead
overwrites the kernel variable with W / sigma before each call, which drops that term.)

Usage: ``dense(1, spectral_norm=True)``, ``conv2d(64, 3, spectral_norm=True, padding="same")``.
"""

from __future__ import annotations

from typing import Any

import keras
import tensorflow as tf
from keras import layers

from gantrain.models.grouped_conv import GroupedConv2D, GroupedConvolution


class _SpectralNorm:
    """Mixin for a layer with ``_kernel`` (..., units): adds ``u`` and :meth:`normalized_kernel`."""

    # What the Keras layer it is mixed into provides.
    _kernel: Any
    compute_dtype: str

    def build(self, input_shape):
        super().build(input_shape)
        self.u = self.add_weight(
            shape=(self._kernel.shape[-1],),
            initializer=keras.initializers.RandomNormal(),
            trainable=False,
            aggregation="mean",  # replicas compute the same update
            name="u",
        )

    def normalized_kernel(self, training) -> tf.Tensor:
        kernel = tf.cast(self._kernel.value, tf.float32)
        w = tf.reshape(kernel, [-1, kernel.shape[-1]])  # (fan_in, units)
        v = tf.math.l2_normalize(tf.linalg.matvec(w, tf.cast(self.u.value, tf.float32)))
        u = tf.math.l2_normalize(tf.linalg.matvec(w, v, transpose_a=True))
        if training:
            self.u.assign(u)
        u, v = tf.stop_gradient(u), tf.stop_gradient(v)
        sigma = tf.tensordot(v, tf.linalg.matvec(w, u), 1)
        return tf.cast(kernel / sigma, self.compute_dtype)


@keras.saving.register_keras_serializable("gantrain")
class SNDense(_SpectralNorm, layers.Dense):
    def call(self, inputs, training=None):
        outputs = tf.matmul(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


@keras.saving.register_keras_serializable("gantrain")
class SNConv2D(_SpectralNorm, GroupedConvolution, layers.Conv2D):
    def call(self, inputs, training=None):
        if self.data_format != "channels_last":
            raise ValueError("SNConv2D supports channels_last only")
        outputs = self.convolution_op(inputs, self.normalized_kernel(training))
        if self.use_bias:
            outputs = outputs + self.bias
        return self.activation(outputs)


def dense(units: int, spectral_norm: bool = False, **kwargs) -> layers.Layer:
    return (SNDense if spectral_norm else layers.Dense)(units, **kwargs)


def conv2d(filters: int, kernel_size: int, spectral_norm: bool = False, **kwargs) -> layers.Layer:
    """A Conv2D, spectrally normalized or not; with ``groups`` > 1 one that is fast on a CPU too
    (``gantrain.models.grouped_conv``)."""
    if spectral_norm:
        return SNConv2D(filters, kernel_size, **kwargs)
    return (GroupedConv2D if kwargs.get("groups", 1) > 1 else layers.Conv2D)(filters, kernel_size, **kwargs)
