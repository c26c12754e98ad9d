"""Auxiliary networks trained beside D whose judgement is added to G's objective.

``gon``: the "gradient optimization network" of GC-GAN, in the principled form of D2GAN (Nguyen
et al. 2017). GC-GAN feeds D's scalar output into GON, which leaves its objective undefined; here
GON is a second discriminator that sees the examples themselves and has two non-negative heads,
D2GAN's pair: ``D1 = softplus(h1)`` rewards real data, ``D2 = softplus(h2)`` rewards generated data.
GON maximises ``alpha E[log D1(x)] - E[D1(G(z))] - E[D2(x)] + beta E[log D2(G(z))]``; G minimises the
same expression's G terms, ``-E[D1(G(z))] + beta E[log D2(G(z))]``, times ``weight``, on top of
its own loss. The D1 term is a KL(data || model) divergence, which punishes missing modes; the
D2 term is the reverse KL, which punishes samples off the data.

Usage: ``aux = AUXILIARIES.build(cfg.aux)`` -> :class:`DualDiscriminatorObjective`.
"""

from __future__ import annotations

from dataclasses import dataclass

import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.registry import Registry

AUXILIARIES = Registry("aux")


def log_softplus(h: tf.Tensor) -> tf.Tensor:
    """log(softplus(h)) without -inf: softplus(h) ~ exp(h) far below zero."""
    return tf.where(h < -20.0, h, tf.math.log(tf.nn.softplus(tf.maximum(h, -20.0))))


@dataclass(frozen=True)
class DualDiscriminatorObjective:
    weight: float  # of the GON terms in G's objective
    alpha: float
    beta: float
    heads: int = 2  # output units of the auxiliary network

    def network_loss(self, h_real: tf.Tensor, h_fake: tf.Tensor) -> tf.Tensor:
        """What GON minimises, per example; h_*: (B, 2) logits of the two heads."""
        d1_real, d2_real = tf.unstack(h_real, axis=1)
        d1_fake, d2_fake = tf.unstack(h_fake, axis=1)
        return (
            -self.alpha * log_softplus(d1_real)
            + tf.nn.softplus(d1_fake)
            + tf.nn.softplus(d2_real)
            - self.beta * log_softplus(d2_fake)
        )

    def generator_loss(self, h_fake: tf.Tensor) -> tf.Tensor:
        """GON's terms of G's objective, per example, times ``weight``."""
        d1_fake, d2_fake = tf.unstack(h_fake, axis=1)
        return self.weight * (-tf.nn.softplus(d1_fake) + self.beta * log_softplus(d2_fake))


@AUXILIARIES.register("gon")
def gon(weight: float = 1.0, alpha: float = 0.2, beta: float = 0.1) -> DualDiscriminatorObjective:
    """GC-GAN's GON as D2GAN's dual discriminator; alpha, beta as in D2GAN (0.2, 0.1)."""
    for key, value in (("weight", weight), ("alpha", alpha), ("beta", beta)):
        if value <= 0:
            raise ConfigError(f"aux.{key}", f"must be > 0, got {value}")
    return DualDiscriminatorObjective(weight, alpha, beta)
