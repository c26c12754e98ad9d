"""Penalties on the discriminator, per example.

Usage: ``gp = gradient_penalty(critic, real, fake, eps)``.
"""

from __future__ import annotations

from typing import Callable

import tensorflow as tf


def gradient_penalty(
    critic: Callable[[tf.Tensor], tf.Tensor], real: tf.Tensor, fake: tf.Tensor, eps: tf.Tensor
) -> tf.Tensor:
    """(||grad_x D(x_hat)||_2 - 1)^2 at x_hat = eps * real + (1 - eps) * fake (WGAN-GP).

    real, fake: (B, ...); eps: (B,) drawn from U[0, 1], one weight per example; returns (B,).
    Called inside D's gradient tape, so D's update differentiates through this gradient.
    """
    eps = tf.reshape(eps, [-1] + [1] * (len(real.shape) - 1))
    x_hat = eps * real + (1.0 - eps) * fake
    with tf.GradientTape() as tape:
        tape.watch(x_hat)
        d_hat = critic(x_hat)
    grad = tape.gradient(d_hat, x_hat)
    # The small constant keeps the norm's gradient finite where grad == 0.
    norm = tf.sqrt(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))) + 1e-12)
    return tf.square(norm - 1.0)
