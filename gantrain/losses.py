"""Adversarial losses, each a pair of per-example functions of the discriminator's logits.

``d_loss(d_real [B], d_fake [B]) -> [B]`` is what D minimises; ``g_loss(d_fake [B]) -> [B]`` is
what G minimises. Averaging over the global batch happens in the training step.

Usage: ``objective = LOSSES.build(cfg.loss)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional

import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.penalties import GRADIENT_PENALTY, Penalty
from gantrain.registry import Registry

LOSSES = Registry("loss")


def minimax_d(d_real: tf.Tensor, d_fake: tf.Tensor) -> tf.Tensor:
    """-log D(x) - log(1 - D(G(z))) with D = sigmoid(logit)."""
    return tf.nn.softplus(-d_real) + tf.nn.softplus(d_fake)


def minimax_g(d_fake: tf.Tensor) -> tf.Tensor:
    """log(1 - D(G(z))): the original zero-sum objective, which saturates when D wins."""
    return -tf.nn.softplus(d_fake)


def non_saturating_g(d_fake: tf.Tensor) -> tf.Tensor:
    """-log D(G(z)): same fixed point as minimax, strong gradients early on."""
    return tf.nn.softplus(-d_fake)


def wasserstein_d(d_real: tf.Tensor, d_fake: tf.Tensor) -> tf.Tensor:
    """The critic maximises E[D(x)] - E[D(G(z))], i.e. minimises its negation."""
    return d_fake - d_real


def wasserstein_g(d_fake: tf.Tensor) -> tf.Tensor:
    """G maximises E[D(G(z))]."""
    return -d_fake


@dataclass(frozen=True)
class Objective:
    """What the training step optimises: D's and G's losses, plus an optional penalty on D."""

    d_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    g_loss: Callable[[tf.Tensor], tf.Tensor]
    penalty: Optional[Penalty] = None
    penalty_weight: float = 0.0


@LOSSES.register("gan")
def gan() -> Objective:
    """Original minimax GAN (Goodfellow et al. 2014)."""
    return Objective(minimax_d, minimax_g)


@LOSSES.register("nsgan")
def nsgan() -> Objective:
    """Non-saturating GAN (Goodfellow et al. 2014, section 3)."""
    return Objective(minimax_d, non_saturating_g)


@LOSSES.register("wgan_gp")
def wgan_gp(gp_weight: float = 10.0) -> Objective:
    """Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), lambda = ``gp_weight``."""
    if gp_weight < 0:
        raise ConfigError("loss.gp_weight", f"must be >= 0, got {gp_weight}")
    return Objective(wasserstein_d, wasserstein_g, GRADIENT_PENALTY, gp_weight)
