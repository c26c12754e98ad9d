"""The learning-rate schedule of every optimizer: constant, or linear decay to zero (``train.lr_decay``).

``scale`` is a variable (checkpointed) that a divergence rollback lowers.

Usage: ``keras.optimizers.Adam(LearningRate(1e-4, decay_steps=100_000))``.
"""

from __future__ import annotations

from typing import Optional

import keras
import tensorflow as tf


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """``lr * scale * max(0, 1 - iteration / decay_steps)``; without ``decay_steps``, ``lr * scale``."""

    def __init__(self, lr: float, decay_steps: Optional[int] = None):
        self.lr = lr
        self.decay_steps = decay_steps
        self.scale = tf.Variable(1.0, trainable=False, name="lr_scale")

    def __call__(self, iteration: tf.Tensor) -> tf.Tensor:
        lr = self.lr * self.scale
        if self.decay_steps is None:
            return lr
        done = tf.cast(iteration, tf.float32) / float(self.decay_steps)
        return lr * tf.maximum(0.0, 1.0 - done)

    def get_config(self) -> dict:
        return {"lr": self.lr, "decay_steps": self.decay_steps}
