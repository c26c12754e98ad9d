"""Adversarial losses, each a pair of per-example functions of the discriminator's logits.

``d_loss(d_real [B], d_fake [B]) -> [B]`` is what D minimises; ``g_loss(d_fake [B]) -> [B]`` is
what G minimises, or ``g_loss(d_fake [B], d_real [B])`` for a relativistic loss, whose G compares
each fake with a real example of its own. Averaging over the global batch happens in the training step. Every loss takes
an optional penalty on D's input gradient (``gantrain.training.penalties``).

Usage: ``objective = LOSSES.build(cfg.loss)``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum

import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.registry import Registry
from gantrain.training.penalties import PENALTIES, Penalty

LOSSES = Registry("loss")


class PenaltyName(Enum):
    none = "none"
    gp = "gp"  # WGAN-GP
    dragan = "dragan"  # DRAGAN
    r1 = "r1"  # R1, gamma = gp_weight
    r1r2 = "r1r2"  # R1 + R2 (R3GAN), gamma = gp_weight


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


def hinge_d(d_real: tf.Tensor, d_fake: tf.Tensor) -> tf.Tensor:
    """max(0, 1 - D(x)) + max(0, 1 + D(G(z))): only margin violations count."""
    return tf.nn.relu(1.0 - d_real) + tf.nn.relu(1.0 + d_fake)


def least_squares_d(d_real: tf.Tensor, d_fake: tf.Tensor) -> tf.Tensor:
    """(D(x) - 1)^2 / 2 + D(G(z))^2 / 2: targets b = 1 for real, a = 0 for fake."""
    return 0.5 * tf.square(d_real - 1.0) + 0.5 * tf.square(d_fake)


def least_squares_g(d_fake: tf.Tensor) -> tf.Tensor:
    """(D(G(z)) - 1)^2 / 2: G's target c = 1 is the real label."""
    return 0.5 * tf.square(d_fake - 1.0)


def relativistic_d(d_real: tf.Tensor, d_fake: tf.Tensor) -> tf.Tensor:
    """softplus(-(D(x_r) - D(x_f))): D rates each real example above the fake paired with it
    (Jolicoeur-Martineau 2019's RpGAN, as R3GAN/Trainer.py)."""
    return tf.nn.softplus(d_fake - d_real)


def relativistic_g(d_fake: tf.Tensor, d_real: tf.Tensor) -> tf.Tensor:
    """softplus(-(D(x_f) - D(x_r))): G raises each fake above the real example paired with it."""
    return tf.nn.softplus(d_real - d_fake)


@dataclass(frozen=True)
class Objective:
    """What the training step optimises: D's and G's losses, an optional penalty on D, and an
    optional clip of D's weights to [-clip, clip] after each of its updates."""

    d_loss: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    g_loss: Callable[..., tf.Tensor]  # (d_fake); relativistic: (d_fake, d_real)
    penalty: Penalty | None = None
    penalty_weight: float | tf.Variable = 0.0  # a variable when train.schedule.gamma sets it per step
    clip: float | None = None
    class_weight: float = 0.0  # ACGAN (loss.aux_classifier): weight of the class cross-entropy in D's and G's losses
    relativistic: bool = False  # g_loss(d_fake, d_real): G's update scores a real batch of its own too


def class_cross_entropy(labels: tf.Tensor, class_logits: tf.Tensor) -> tf.Tensor:
    """ACGAN's auxiliary loss (Odena et al. 2017) per example: -log p(y | x) from D's class
    logits. D minimises it on real and fake examples, G on its own (both learn that a sample of
    class y should look like y)."""
    return tf.nn.sparse_softmax_cross_entropy_with_logits(tf.cast(labels, tf.int32), tf.cast(class_logits, tf.float32))


def _objective(
    d_loss,
    g_loss,
    penalty: PenaltyName,
    penalty_weight: float,
    one_sided: bool,
    clip=None,
    aux_classifier: float = 0.0,
    relativistic: bool = False,
) -> Objective:
    """The objective of a loss option; ``penalty_weight``: the key ``loss.gp_weight``, WGAN-GP's
    lambda and R1's (R1 + R2's) gamma alike."""
    if penalty_weight < 0:
        raise ConfigError("loss.gp_weight", f"must be >= 0, got {penalty_weight}")
    if aux_classifier < 0:
        raise ConfigError("loss.aux_classifier", f"must be >= 0, got {aux_classifier}")
    if penalty is PenaltyName.none:
        return Objective(d_loss, g_loss, clip=clip, class_weight=aux_classifier, relativistic=relativistic)
    if (penalty.value, one_sided) not in PENALTIES:
        raise ConfigError("loss.one_sided", f"applies to penalty gp or dragan, not {penalty.value}")
    return Objective(
        d_loss, g_loss, PENALTIES[penalty.value, one_sided], penalty_weight, clip, aux_classifier, relativistic
    )


def _register(
    name: str,
    d_loss,
    g_loss,
    doc: str,
    default_penalty: PenaltyName = PenaltyName.none,
    default_weight: float = 10.0,
    relativistic: bool = False,
) -> None:
    """A loss option whose keys are the penalty's (``penalty``, ``gp_weight``, ``one_sided``) and
    ACGAN's weight (``aux_classifier``)."""

    def loss(
        penalty: PenaltyName = default_penalty,
        gp_weight: float = default_weight,
        one_sided: bool = False,
        aux_classifier: float = 0.0,
    ) -> Objective:
        return _objective(
            d_loss, g_loss, penalty, gp_weight, one_sided, aux_classifier=aux_classifier, relativistic=relativistic
        )

    loss.__name__, loss.__doc__ = name, doc
    LOSSES.register(name)(loss)


_register("gan", minimax_d, minimax_g, "Original minimax GAN (Goodfellow et al. 2014).")
_register("nsgan", minimax_d, non_saturating_g, "Non-saturating GAN (Goodfellow et al. 2014, section 3).")
_register(
    "wgan_gp",
    wasserstein_d,
    wasserstein_g,
    "Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), lambda = ``gp_weight``.",
    PenaltyName.gp,
)
_register(
    "hinge", hinge_d, wasserstein_g, "Hinge loss (Lim & Ye 2017; Miyato et al. 2018): G maximises D(G(z)) as in WGAN."
)
_register("lsgan", least_squares_d, least_squares_g, "Least-squares GAN (Mao et al. 2017) with labels a=0, b=1, c=1.")
# R3GAN's CIFAR-10 preset starts gamma at 0.05.
_register(
    "rpgan",
    relativistic_d,
    relativistic_g,
    "Relativistic pairing GAN (Jolicoeur-Martineau 2019) with R1 + R2, as R3GAN (Huang et al. 2024).",
    PenaltyName.r1r2,
    default_weight=0.05,
    relativistic=True,
)


@LOSSES.register("wgan")
def wgan(
    clip: float = 0.01,
    penalty: PenaltyName = PenaltyName.none,
    gp_weight: float = 10.0,
    one_sided: bool = False,
    aux_classifier: float = 0.0,
) -> Objective:
    """Wasserstein GAN with weight clipping (Arjovsky et al. 2017): D's weights stay in [-clip, clip]."""
    if clip <= 0:
        raise ConfigError("loss.clip", f"must be > 0, got {clip}")
    return _objective(wasserstein_d, wasserstein_g, penalty, gp_weight, one_sided, clip, aux_classifier)
