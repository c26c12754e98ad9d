"""Grouped 2-D convolution (``Conv2D(groups=...)``, R3GAN's k x k convs and its depthwise basis) at
a CPU's usual speed.

Keras 3's TensorFlow backend runs every grouped convolution inside a nested XLA compilation, on
every device, because TensorFlow's CPU kernels have no grouped filter gradient. XLA's CPU code for
that gradient, and for the second-order gradients of R1/R2, is pathological: in r3gan_mnist's
networks one 3x3 conv of 4 groups (64 channels, 16x16, batch 64, one thread) took 800 ms forward
and backward against 27 ms as four separate convs. So on a CPU each group is convolved on its own
slice of the channels, through Keras's own (ungrouped) convolution, and the results are
concatenated: the grouped conv's definition, with the same kernel variable, equal to Keras's path
to float32 round-off. Where the convolution runs on a GPU, Keras's grouped path is kept as it is
(XLA hands it to cuDNN's grouped kernels, where many small convolutions would cost a launch each).

Usage: ``GroupedConv2D(64, 3, groups=4, padding="same")``, a ``keras.layers.Conv2D`` in every
other respect (the same weights and config); ``GroupedConvolution`` mixes the same into a subclass
of Conv2D that computes with ``convolution_op`` (``SNConv2D``).
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def runs_on_gpu(x: tf.Tensor) -> bool:
    """Whether ops on ``x`` run on a GPU: its device, or, in a graph not yet placed, whether
    TensorFlow has a GPU (it places ops there when it has one)."""
    device = x.device or ("GPU" if tf.config.list_logical_devices("GPU") else "CPU")
    return "GPU" in device.upper()


class GroupedConvolution:
    """Mixin for a ``layers.Conv2D`` (subclass): grouped convolutions as one per group off a GPU."""

    # What the Keras layer it is mixed into provides.
    groups: int
    data_format: str

    def convolution_op(self, inputs, kernel):
        convolve = super().convolution_op
        if self.groups == 1 or runs_on_gpu(inputs):
            return convolve(inputs, kernel)
        axis = -1 if self.data_format == "channels_last" else 1
        # The kernel is (kh, kw, in / groups, out): group g's outputs are its last axis's g-th slice.
        parts = zip(tf.split(inputs, self.groups, axis=axis), tf.split(kernel, self.groups, axis=-1), strict=True)
        return tf.concat([convolve(x, k) for x, k in parts], axis)


@keras.saving.register_keras_serializable("gantrain")
class GroupedConv2D(GroupedConvolution, layers.Conv2D):
    """``layers.Conv2D`` whose grouped convolutions run one per group off a GPU."""
