"""An exponential moving average of the generator's weights (``train.ema``).

After each generator update: ``ema <- decay * ema + (1 - decay) * weight`` for the trainable
weights. The average starts as a copy of G. Samples and evaluation use the averaged generator when
it is on (Yazici et al. 2019).

Batch-norm statistics are not averaged or copied: G's moving statistics belong to G's weights,
not to their average. :meth:`MovingAverage.standing_statistics` recomputes them for the averaged
weights (the "standing statistics" of BigGAN's sampling code): the averaged G runs in training
mode over fixed noise and each layer's moving mean and variance become the averages of its batch
statistics. The training loop does this before every preview, evaluation and checkpoint, so
checkpoints (and ``gantrain-eval``) hold statistics that fit the averaged weights.

A scheduled average (``train.schedule.ema``, R3GAN's) moves its horizon instead: a half-life in
real images, converted to the decay of each step by :func:`decay_from_half_life`, ``decay`` then a
variable the step sets.

Usage: ``ema = MovingAverage(generator, 0.999); ema.update(); ema.standing_statistics(); ema.model(z)``.
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf

from gantrain.models.conditioning import generate, noise_size

STANDING_BATCHES, STANDING_BATCH_SIZE = 16, 64  # 1024 noise vectors


def batch_norms(model: keras.Model) -> list[keras.layers.BatchNormalization]:
    """The model's batch-norm layers, in order."""
    return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]


def half_life(decay: float, batch_size: int) -> float:
    """The real images after which a weight's share of the average has halved, at ``decay`` per
    step of ``batch_size`` images: ``batch_size * ln(1/2) / ln(decay)``; 0 for decay 0 (G itself)."""
    return 0.0 if decay == 0 else batch_size * math.log(0.5) / math.log(decay)


def decay_from_half_life(images: tf.Tensor, batch_size: int) -> tf.Tensor:
    """The decay per step of ``batch_size`` images that halves a weight's share in ``images``
    images, R3GAN's ``0.5 ** (batch_size / max(images, 1e-8))``: a horizon in images stays the same
    average whatever the batch."""
    return 0.5 ** (batch_size / tf.maximum(images, 1e-8))


class MovingAverage:
    """``decay``: a float, or a variable that a schedule sets before each update."""

    def __init__(self, model: keras.Model, decay: float | tf.Variable, seed: int = 0, num_classes: int = 0):
        self.decay, self.num_classes = decay, num_classes
        self.source = model
        self.model = keras.models.clone_model(model)
        self.model.set_weights(model.get_weights())
        self.seed = seed
        self._norms = batch_norms(self.model)

    def update(self) -> None:
        """One averaging step; call in cross-replica context (inside or outside a tf.function)."""
        for average, weight in zip(self.model.trainable_weights, self.source.trainable_weights, strict=True):
            average.assign(self.decay * average + (1.0 - self.decay) * weight)

    def standing_statistics(self) -> None:
        """Batch-norm statistics for the averaged weights, from fixed noise (none without batch norm)."""
        if not self._norms:
            return
        momenta = [layer.momentum for layer in self._norms]
        noise = tf.random.stateless_normal(
            [STANDING_BATCHES, STANDING_BATCH_SIZE, noise_size(self.model)], seed=[self.seed, 3]
        )
        # A conditional G's statistics from every class alike (its scale and shift are per class).
        labels = tf.range(STANDING_BATCH_SIZE) % self.num_classes if self.num_classes else None
        try:
            for k in range(STANDING_BATCHES):
                for layer in self._norms:
                    layer.momentum = k / (k + 1)  # the running mean of the batch statistics so far
                generate(self.model, noise[k], labels, training=True)
        finally:
            for layer, momentum in zip(self._norms, momenta, strict=True):
                layer.momentum = momentum
