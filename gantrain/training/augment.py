"""Differentiable augmentation of everything D sees (``train.augment``), for small datasets.

DiffAugment (Zhao et al. 2020): the same random transforms are applied to real images, to fake
images and to the penalty's points on every call of D, and they are differentiable, so G learns
through them. D then cannot memorise the few real images it has, and G is not taught to produce
augmented ones (the transforms change D's view of both sides alike). The transforms follow the
authors' ``DiffAugment_tf.py``: ``color`` (brightness, saturation, contrast), ``translation`` (up
to 1/8 of the side, zero-filled) and ``cutout`` (a square of half the side set to zero); they run
in the order listed.

Each transform is applied to an image with probability ``p`` (``train.augment_p``; 1 is DiffAugment,
anything less is ADA's per-image choice). ``augment_p=auto`` is ADA's adaptive probability
(Karras et al. 2020): it starts at 0 and, every 4 generator steps, moves by a fixed amount towards
more augmentation while D is too sure of the reals (the mean of sign(D(real)) above 0.6) and
towards less when it is not, at a speed that could take it from 0 to 1 in 500k real images.

Every random number comes from a stream of its own (checkpointed), so switching augmentation on
leaves the batches and noise of a run unchanged, and ``p=0`` trains exactly as no augmentation.

Usage::

    augment = Augmentation(("translation", "cutout"), p=1.0, seed=0)
    u = augment.rng.uniform([batch, augment.width])   # the draws for one call of D
    views = augment(images, u)                        # (B, H, W, C) -> (B, H, W, C)
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import tensorflow as tf

# ADA's constants (Karras et al. 2020, training_loop.py): the target of E[sign(D(real))], the
# generator steps between adjustments, and the real images in which p can go from 0 to 1.
ADA_TARGET, ADA_INTERVAL, ADA_IMAGES = 0.6, 4, 500_000


def _per_image(u: tf.Tensor) -> tf.Tensor:
    return tf.reshape(u, [-1, 1, 1, 1])


def color(x: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
    """Brightness + U[-0.5, 0.5), saturation x U[0, 2), contrast x U[0.5, 1.5), per image.
    ``u``: (B, 3) uniforms in [0, 1)."""
    x = x + _per_image(u[:, 0]) - 0.5
    mean = tf.reduce_mean(x, axis=3, keepdims=True)
    x = (x - mean) * _per_image(u[:, 1]) * 2.0 + mean
    mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
    return (x - mean) * (_per_image(u[:, 2]) + 0.5) + mean


def _shift(x: tf.Tensor, shift: tf.Tensor, axis: int, reach: int) -> tf.Tensor:
    """out[..., i, ...] = x[..., i + shift, ...] along ``axis`` (1 or 2), zero where that falls
    outside the image; ``shift``: (B,) integers in [-reach, reach]."""
    padding = [[0, 0]] * 4
    padding[axis] = [reach, reach]
    padded = tf.pad(x, padding)
    index = tf.range(x.shape[axis])[None, :] + shift[:, None] + reach  # (B, side)
    return tf.gather(padded, index, axis=axis, batch_dims=1)


def translation(x: tf.Tensor, u: tf.Tensor, ratio: float = 0.125) -> tf.Tensor:
    """Each image moved by whole pixels, up to ``ratio`` of its side along each axis, the uncovered
    border zero. ``u``: (B, 2) uniforms in [0, 1) -> shifts in [-reach, reach]."""
    out = x
    for axis, column in ((1, 0), (2, 1)):
        reach = int(x.shape[axis] * ratio + 0.5)
        shift = tf.cast(tf.floor(u[:, column] * (2 * reach + 1)), tf.int32) - reach
        out = _shift(out, shift, axis, reach)
    return out


def cutout(x: tf.Tensor, u: tf.Tensor, ratio: float = 0.5) -> tf.Tensor:
    """A square of ``ratio`` of the side set to zero at a uniform position per image (partly
    outside the image near the borders, as the authors' code). ``u``: (B, 2) uniforms in [0, 1)."""
    masks = []
    for axis, column in ((1, 0), (2, 1)):
        side = x.shape[axis]
        size = int(side * ratio + 0.5)
        centre = tf.cast(tf.floor(u[:, column] * (side + 1 - size % 2)), tf.int32)
        start = (centre - size // 2)[:, None]
        position = tf.range(side)[None, :]
        masks.append(tf.cast((position >= start) & (position < start + size), x.dtype))  # (B, side)
    inside = masks[0][:, :, None, None] * masks[1][:, None, :, None]
    return x * (1.0 - inside)


class Transform(NamedTuple):
    apply: Callable[[tf.Tensor, tf.Tensor], tf.Tensor]
    draws: int  # uniforms per image


TRANSFORMS: dict[str, Transform] = {
    "color": Transform(color, 3),
    "translation": Transform(translation, 2),
    "cutout": Transform(cutout, 2),
}


class Augmentation:
    """The transforms of ``policy`` with probability ``p`` (a float, or ``"auto"``) per image,
    their random stream, and ADA's state; every variable is checkpointed (:meth:`checkpointed`)."""

    def __init__(self, policy: tuple[str, ...], p: float | str, seed: int, images_per_step: int = 0):
        self.policy = tuple(policy)
        self.adaptive = p == "auto"
        self.p = tf.Variable(0.0 if self.adaptive else float(p), trainable=False, name="augment_p")
        # A Philox key of its own: independent of the run's main stream (key 0), whatever the seed.
        self.rng = tf.random.Generator.from_key_counter(key=1, counter=[seed, 0], alg="philox")
        # ADA: sum of the steps' E[sign(D(real))] since the last adjustment, and how many steps.
        self.signs = tf.Variable(0.0, trainable=False, name="augment_signs")
        self.steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="augment_steps")
        self.speed = images_per_step * ADA_INTERVAL / ADA_IMAGES

    @property
    def width(self) -> int:
        """Uniforms one image needs: each transform's own, and one for whether it is applied."""
        return sum(TRANSFORMS[name].draws + 1 for name in self.policy)

    def __call__(self, x: tf.Tensor, u: tf.Tensor) -> tf.Tensor:
        """``x`` (B, H, W, C) in [-1, 1] seen through the transforms; ``u`` (B, width) in [0, 1)."""
        column = 0
        for name in self.policy:
            transform = TRANSFORMS[name]
            applied = u[:, column] < tf.cast(self.p, u.dtype)
            changed = transform.apply(x, u[:, column + 1 : column + 1 + transform.draws])
            x = tf.where(_per_image(applied), changed, x)
            column += 1 + transform.draws
        return x

    def observe(self, real_sign: tf.Tensor) -> None:
        """ADA's update from one step's mean sign(D(real)); in cross-replica context."""
        signs, steps = self.signs + real_sign, self.steps + 1
        due = steps >= ADA_INTERVAL
        moved = tf.clip_by_value(
            self.p + tf.sign(signs / tf.cast(steps, tf.float32) - ADA_TARGET) * self.speed, 0.0, 1.0
        )
        self.p.assign(tf.where(due, moved, self.p))
        self.signs.assign(tf.where(due, 0.0, signs))
        self.steps.assign(tf.where(due, tf.constant(0, tf.int64), steps))

    def checkpointed(self) -> dict[str, tf.Variable | tf.random.Generator]:
        return {"augment_rng": self.rng, "augment_p": self.p, "augment_signs": self.signs, "augment_steps": self.steps}
