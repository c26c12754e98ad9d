"""Penalties on the discriminator's input gradient: ``cost(grad_x D(x))`` at points built from the batch.

A penalty is where D's gradient is taken (``points``) and what is charged for it (``cost``):

- ``gp``: WGAN-GP (Gulrajani et al. 2017), ``(||g|| - 1)^2`` on lines between real and fake examples;
  ``one_sided`` charges only ``max(0, ||g|| - 1)^2`` (the paper's appendix, Petzka et al. 2018).
- ``dragan``: DRAGAN (Kodali et al. 2017), the same cost around the real data: on lines from real
  examples to copies perturbed by ``0.5 * std(batch) * U[0, 1]`` per element, as the authors' code
  (the std of the global batch under a strategy).
- ``r1``: R1 (Mescheder et al. 2018), ``||g||^2 / 2`` on real examples; its weight is the paper's
  gamma. (GAN_stability's ``reg_param`` multiplies ``||g||^2`` without the 1/2: it is gamma / 2, so
  ``reg_param: 10`` there is ``loss.gp_weight=20`` here.)
- ``r1r2``: R1 + R2 (R3GAN, Huang et al. 2024, ``R3GAN/Trainer.py``), ``(||g_real||^2 +
  ||g_fake||^2) / 2``: zero-centred on the real and on the fake examples, weight gamma.

:func:`critic_scores` scores real and fake examples in one batched call of D (D treats examples
independently, so the numbers are those of two calls). R1 and R1 + R2 take D's gradient from that
same call, at the examples it scores, as R3GAN does; the other penalties score their own points in
a second call.

Usage: ``d_real, d_fake, penalty, _ = critic_scores(critic, real, fake, PENALTIES["gp"](), eps, noise)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import tensorflow as tf


@dataclass(frozen=True)
class Penalty:
    # (real, fake, eps (B,), noise (B, ...)) -> x (B, ...); None: at the examples the loss scores
    points: Callable[..., tf.Tensor] | None
    cost: Callable[[tf.Tensor], tf.Tensor]  # grad_x D(x), (B, ...) -> (B,)
    needs_noise: bool = False  # points use per-element noise shaped like the data
    at_fakes: bool = False  # with points=None: charged at the fake examples too (R2)


def _per_example(eps: tf.Tensor, like: tf.Tensor) -> tf.Tensor:
    return tf.reshape(eps, [-1] + [1] * (len(like.shape) - 1))


def interpolates(real: tf.Tensor, fake: tf.Tensor, eps: tf.Tensor, noise=None) -> tf.Tensor:
    """eps * real + (1 - eps) * fake, one weight eps_i ~ U[0, 1] per example (eps: (B,))."""
    eps = _per_example(eps, real)
    return eps * real + (1.0 - eps) * fake


def global_std(x: tf.Tensor) -> tf.Tensor:
    """The standard deviation of every element of ``x`` over the global batch: under a strategy
    each replica holds a share, and the statistics are summed over all of them (two passes, as
    ``tf.math.reduce_std``), so a step does the same arithmetic on one device or many."""
    context = tf.distribute.get_replica_context()
    total = lambda value: context.all_reduce(tf.distribute.ReduceOp.SUM, value)  # noqa: E731
    count = total(tf.cast(tf.size(x), tf.float32))
    mean = total(tf.reduce_sum(x)) / count
    return tf.sqrt(total(tf.reduce_sum(tf.square(x - mean))) / count)


def perturbed_reals(real: tf.Tensor, fake: tf.Tensor, eps: tf.Tensor, noise: tf.Tensor) -> tf.Tensor:
    """real + eps * 0.5 * std(real) * noise, noise ~ U[0, 1] per element, eps ~ U[0, 1] per example;
    std over the global batch."""
    return real + _per_example(eps, real) * 0.5 * global_std(real) * noise


def gradient_norm(grad: tf.Tensor) -> tf.Tensor:
    """||grad||_2 per example, (B, ...) -> (B,)."""
    # The small constant keeps the norm's gradient finite where grad == 0.
    return tf.sqrt(tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape)))) + 1e-12)


def unit_norm_cost(grad: tf.Tensor) -> tf.Tensor:
    """(||grad|| - 1)^2 per example."""
    return tf.square(gradient_norm(grad) - 1.0)


def one_sided_cost(grad: tf.Tensor) -> tf.Tensor:
    """max(0, ||grad|| - 1)^2 per example: only gradients steeper than 1 are charged."""
    return tf.square(tf.nn.relu(gradient_norm(grad) - 1.0))


def half_squared_norm_cost(grad: tf.Tensor) -> tf.Tensor:
    """||grad||^2 / 2 per example."""
    return 0.5 * tf.reduce_sum(tf.square(grad), axis=list(range(1, len(grad.shape))))


GRADIENT_PENALTY = Penalty(interpolates, unit_norm_cost)
ONE_SIDED_GRADIENT_PENALTY = Penalty(interpolates, one_sided_cost)
DRAGAN = Penalty(perturbed_reals, unit_norm_cost, needs_noise=True)
ONE_SIDED_DRAGAN = Penalty(perturbed_reals, one_sided_cost, needs_noise=True)
R1 = Penalty(None, half_squared_norm_cost)
R1_R2 = Penalty(None, half_squared_norm_cost, at_fakes=True)

# (name, one_sided) -> penalty; ``none`` is no penalty at all.
PENALTIES: dict[tuple[str, bool], Penalty] = {
    ("gp", False): GRADIENT_PENALTY,
    ("gp", True): ONE_SIDED_GRADIENT_PENALTY,
    ("dragan", False): DRAGAN,
    ("dragan", True): ONE_SIDED_DRAGAN,
    ("r1", False): R1,
    ("r1r2", False): R1_R2,
}


class CriticScores(NamedTuple):
    """What :func:`critic_scores` returns, each (B,) float32 but ``head``."""

    real: tf.Tensor  # D(real)
    fake: tf.Tensor  # D(fake)
    penalty: tf.Tensor  # per example; zeros without a penalty
    head: tf.Tensor | None = None  # D's second output in the call that scored both (ACGAN's class logits)


def critic_scores(
    critic: Callable[[tf.Tensor], tf.Tensor | tuple[tf.Tensor, tf.Tensor]],
    real: tf.Tensor,
    fake: tf.Tensor,
    penalty: Penalty | None = None,
    eps: tf.Tensor | None = None,
    noise: tf.Tensor | None = None,
    loss_scale: tf.Tensor | float = 1.0,
    point_critic: Callable[[tf.Tensor], tf.Tensor] | None = None,
    pack: int = 1,
) -> CriticScores:
    """(D(real), D(fake), penalty per example, D's head) from one batched call of ``critic`` on
    both, which returns D's scores, or (scores, head) when D has a second output.

    Called inside D's gradient tape, so D's update differentiates through the penalty's gradient.
    ``loss_scale`` (mixed float16) scales D's output before the penalty's gradient and unscales
    after, so small gradients do not flush to zero. ``point_critic``: D as the penalty's points see
    it (default ``critic``; augmentation draws anew for each call of D). ``pack`` > 1: ``critic``
    scores packs of that many consecutive examples (PacGAN), and the penalty is charged per pack,
    on the gradient with respect to the whole pack.
    """
    both = tf.concat([real, fake], 0)
    if penalty is None:
        scores, head = _scored(critic, both)
        d_real, d_fake = tf.split(scores, 2)
        return CriticScores(d_real, d_fake, tf.zeros_like(d_real), head)
    if penalty.points is None:  # zero-centred at the scored examples: one call of D gives both
        scores, head, grad = _scores_and_input_gradient(critic, both, loss_scale, pack)
        d_real, d_fake = tf.split(scores, 2)
        grad_real, grad_fake = tf.split(grad, 2)
        cost = penalty.cost(grad_real)
        if penalty.at_fakes:
            cost += penalty.cost(grad_fake)
        return CriticScores(d_real, d_fake, cost, head)
    scores, head = _scored(critic, both)
    d_real, d_fake = tf.split(scores, 2)
    # A call of its own: inside the batched call, the penalty's second-order gradient would
    # also run back through the real and fake examples (measured: +50% FLOPs per step).
    points = penalty.points(real, fake, eps, noise)
    *_, grad = _scores_and_input_gradient(point_critic or critic, points, loss_scale, pack)
    return CriticScores(d_real, d_fake, penalty.cost(grad), head)  # the norm in float32


def _scored(critic, x: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor | None]:
    """(D's scores of ``x``, its second output or None)."""
    out = critic(x)
    return out if isinstance(out, tuple) else (out, None)


def _scores_and_input_gradient(critic, x: tf.Tensor, loss_scale, pack: int):
    """(D(x), D's head or None, grad_x D(x)) from one call of D, the gradient in float32, one row per pack."""
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores, head = _scored(critic, x)
        scaled = scores * loss_scale
    grad = tf.cast(tape.gradient(scaled, x), tf.float32) / loss_scale
    if pack > 1:
        grad = tf.reshape(grad, [-1, pack * math.prod(grad.shape[1:])])  # one row per pack
    return scores, head, grad
