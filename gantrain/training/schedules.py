"""Schedules of the training's hyperparameters, as pure functions of the step.

- :class:`LearningRate`: every optimizer's learning rate: constant, or linear decay to zero
  (``train.lr_decay``), times ``scale``, a checkpointed variable that a divergence rollback lowers,
  times ``factor`` when the learning rate follows a cosine schedule.
- :func:`cosine_decay_with_warmup`: R3GAN's schedule (Huang et al. 2024, ``training_loop.py``):
  a linear warm-up from ``warmup_value`` to ``base``, a hold at ``base``, then half a cosine from
  ``base`` to ``final`` at ``steps``, ``final`` after. R3GAN counts real images where gantrain
  counts generator steps: its ``cur_nimg`` is ``step * train.batch_size`` (one real batch per
  generator step, as R3GAN's n_critic of 1), so a horizon of N images is N / batch_size steps.
- :class:`Scheduled`: one scheduled quantity (``train.schedule.<name>``): the variable the step
  reads, set from the schedule before each step uses it. :class:`Schedules`: all of a run's.

Each value is a function of the step counter alone, which is checkpointed: a resumed run sets the
same values at the same steps as a straight one, and every replica the same values.

Usage::

    keras.optimizers.Adam(LearningRate(1e-4, decay_steps=100_000))
    lr = Schedule(base=2e-4, final=5e-5, steps=39_062)(step)   # float64 scalar tensor
    values = schedules.set(step)   # {"schedule/beta2": ..., ...}, each variable assigned
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import keras
import tensorflow as tf


class LearningRate(keras.optimizers.schedules.LearningRateSchedule):
    """``lr * scale * max(0, 1 - iteration / decay_steps)``; without ``decay_steps``, ``lr * scale``;
    with a ``factor`` variable (a cosine schedule of the learning rate), times its value."""

    def __init__(self, lr: float, decay_steps: int | None = None, factor: tf.Variable | None = None):
        self.lr = lr
        self.decay_steps = decay_steps
        self.scale = tf.Variable(1.0, trainable=False, name="lr_scale")
        self.factor = factor

    def __call__(self, iteration: tf.Tensor) -> tf.Tensor:
        lr = self.lr * self.scale
        if self.factor is not None:
            lr = lr * self.factor
        if self.decay_steps is None:
            return lr
        done = tf.cast(iteration, tf.float32) / float(self.decay_steps)
        return lr * tf.maximum(0.0, 1.0 - done)

    def get_config(self) -> dict:
        return {"lr": self.lr, "decay_steps": self.decay_steps}


def cosine_decay_with_warmup(
    step: tf.Tensor | int,
    base: float,
    final: float,
    steps: int,
    warmup: int = 0,
    warmup_value: float = 0.0,
    hold: int = 0,
) -> tf.Tensor:
    """R3GAN's ``cosine_decay_with_warmup`` at generator step ``step`` (the steps done before it),
    in float64: ``warmup_value`` rising linearly to ``base`` over ``warmup`` steps, ``base`` held
    until ``warmup + hold``, then ``base + (1 - (1 + cos(pi * t)) / 2) * (final - base)`` with ``t``
    going from 0 to 1 by ``steps``, and ``final`` after it. Needs ``warmup + hold < steps``."""
    t = tf.cast(step, tf.float64)
    decay = 0.5 * (1.0 + tf.cos(math.pi * (t - warmup - hold) / float(steps - warmup - hold)))
    value = base + (1.0 - decay) * (final - base)
    if hold > 0:
        value = tf.where(t > warmup + hold, value, tf.constant(base, tf.float64))
    if warmup > 0:
        slope = (base - warmup_value) / warmup
        value = tf.where(t < warmup, slope * t + warmup_value, value)
    return tf.where(t > steps, tf.constant(final, tf.float64), value)


@dataclass(frozen=True)
class Schedule:
    """One quantity's :func:`cosine_decay_with_warmup`: ``base`` is the value of the key it
    schedules (``train.beta2``, say), the rest are the keys of its ``train.schedule`` entry."""

    base: float
    final: float
    steps: int
    warmup: int = 0
    warmup_value: float = 0.0
    hold: int = 0

    def __call__(self, step: tf.Tensor | int) -> tf.Tensor:
        return cosine_decay_with_warmup(step, **asdict(self))


@dataclass
class Scheduled:
    """A scheduled quantity: ``variable`` (what the step reads) holds ``convert`` of the schedule's
    value (default: the value itself), set by :meth:`set` before the step uses it."""

    name: str  # logged as schedule/<name>
    schedule: Schedule
    variable: tf.Variable
    convert: Callable[[tf.Tensor], tf.Tensor] = field(default=lambda value: value)

    def set(self, step: tf.Tensor) -> tf.Tensor:
        """Assign the value at ``step`` (in cross-replica context: every replica gets it); the
        schedule's value as float32, for the log."""
        value = self.schedule(step)
        self.variable.assign(tf.cast(self.convert(value), self.variable.dtype))
        return tf.cast(value, tf.float32)


@dataclass
class Schedules:
    """A run's scheduled quantities (none: every hyperparameter constant)."""

    entries: list[Scheduled] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        """The metric names of their values, in order."""
        return [f"schedule/{entry.name}" for entry in self.entries]

    def variable(self, name: str, constant: float | None = None) -> tf.Variable | float | None:
        """What reads quantity ``name``: its variable when it is scheduled, else ``constant``."""
        return next((entry.variable for entry in self.entries if entry.name == name), constant)

    def set(self, step: tf.Tensor) -> dict[str, tf.Tensor]:
        """Every quantity's value at ``step`` assigned; {metric name: value}."""
        return {name: entry.set(step) for name, entry in zip(self.names, self.entries, strict=True)}
