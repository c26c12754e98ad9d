"""Build once: everything a run trains and checkpoints, assembled from the config in one place.

:class:`GAN` holds G and D, their optimizers and learning rates, the objective, the random stream,
the step counter and the fixed sample noise, and the optional parts: an auxiliary network
(GON, ``aux=gon``: objective, network and optimizer travel together as one :class:`GON`), a
moving average of G (``train.ema``) and the augmentation of what D sees (``train.augment``); and
the variables of the scheduled hyperparameters (``train.schedule``), which the step sets from its
step counter. :func:`build_gan` makes all of it inside the strategy's scope.
``train``, ``gantrain.api``, ``scripts/bench.py`` and the tests all build through it.

Usage::

    gan = build_gan(cfg, data_shape=(28, 28, 1))
    step = make_train_step(gan, data, check_train(cfg.train))   # gantrain.training.step
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import keras
import tensorflow as tf
from omegaconf import DictConfig

from gantrain.config import Precision, TrainConfig, check_train
from gantrain.errors import ConfigError
from gantrain.models import build_auxiliary, build_models
from gantrain.models.conditioning import noise_size
from gantrain.training.augment import Augmentation
from gantrain.training.ema import MovingAverage, decay_from_half_life, half_life
from gantrain.training.gon import AUXILIARIES, DualDiscriminatorObjective
from gantrain.training.losses import LOSSES, Objective
from gantrain.training.schedules import LearningRate, Schedule, Scheduled, Schedules


@dataclass
class GON:
    """GC-GAN's network trained beside D whose judgement joins G's objective (``aux=gon``,
    ``gantrain.training.gon``)."""

    objective: DualDiscriminatorObjective
    network: keras.Model
    optimizer: keras.optimizers.Optimizer


@dataclass
class GAN:
    generator: keras.Model
    discriminator: keras.Model
    g_optimizer: keras.optimizers.Optimizer
    d_optimizer: keras.optimizers.Optimizer
    objective: Objective
    learning_rates: dict[str, LearningRate]  # "g", "d" (and "gon"): what a divergence rollback lowers
    rng: tf.random.Generator  # the source of every random draw during training (checkpointed)
    step: tf.Variable  # generator steps done
    sample_noise: tf.Variable  # the fixed noise of the previews
    strategy: tf.distribute.Strategy
    gon: GON | None = None
    ema: MovingAverage | None = None
    augment: Augmentation | None = None  # train.augment: what D sees of every image
    num_classes: int = 0  # model.conditional: G and D take labels of this many classes (0: unconditional)
    schedules: Schedules = field(default_factory=Schedules)  # train.schedule: set by the step, from ``step``

    @property
    def sample_labels(self) -> tf.Tensor | None:
        """The labels of the previews' fixed noise: one row per class (None: unconditional)."""
        if not self.num_classes:
            return None
        return tf.repeat(tf.range(self.num_classes), self.sample_noise.shape[0] // self.num_classes)

    @property
    def sampler(self) -> keras.Model:
        """What samples come from: the moving average of G when there is one, else G."""
        return self.ema.model if self.ema is not None else self.generator

    def checkpointed(self) -> dict[str, Any]:
        """The objects a checkpoint holds, by the names runs have saved them under since 0.1.0."""
        objects: dict[str, Any] = {
            "generator": self.generator,
            "discriminator": self.discriminator,
            "g_optimizer": self.g_optimizer,
            "d_optimizer": self.d_optimizer,
            "step": self.step,
            "rng": self.rng,
            "sample_noise": self.sample_noise,
            "lr_scales": [rate.scale for rate in self.learning_rates.values()],
        }
        if self.gon is not None:
            objects.update(aux_network=self.gon.network, aux_optimizer=self.gon.optimizer)
        if self.ema is not None:
            objects["ema_generator"] = self.ema.model
        if self.augment is not None:
            objects.update(self.augment.checkpointed())
        return objects


def build_gan(
    cfg: DictConfig,
    data_shape: tuple[int, ...],
    strategy: tf.distribute.Strategy | None = None,
    num_classes: int = 0,
    opts: TrainConfig | None = None,
) -> GAN:
    """The run's objects for ``cfg`` (its ``model``, ``loss``, ``aux`` and ``train`` nodes) and
    examples of ``data_shape``, created in ``strategy``'s scope (default: the current strategy).
    ``num_classes``: the labels of a conditional model's dataset; ``opts``: ``cfg.train`` as
    :func:`gantrain.config.check_train` returned it, when the caller has checked it already. The
    fixed sample noise holds ``train.num_samples`` (or its default, :meth:`TrainConfig.preview_samples`)
    samples; a conditional run rounds that up to whole rows, one per class."""
    opts = opts or check_train(cfg.train)
    objective = LOSSES.build(cfg.loss)
    gon_objective = AUXILIARIES.build(cfg.aux) if cfg.get("aux") else None
    conditional = bool(cfg.model.get("conditional"))
    strategy = strategy or tf.distribute.get_strategy()
    _check_combination(cfg, opts, objective, gon_objective, conditional, strategy, data_shape)
    classes = num_classes if conditional else 0
    keras.utils.set_random_seed(opts.seed)  # initialisation; training draws come from ``rng``
    with strategy.scope():
        generator, discriminator = build_models(
            cfg.model, data_shape, opts.precision.value, opts.pack, classes, objective.class_weight > 0
        )
        schedules = _schedules(opts, objective.penalty_weight)
        if opts.schedule.gamma is not None:
            objective = dataclasses.replace(objective, penalty_weight=schedules.variable("gamma"))
        rates, g_optimizer, d_optimizer, gon = _optimizers(cfg, data_shape, opts, schedules, gon_objective)
        ema = None
        if opts.ema is not None:
            ema = MovingAverage(generator, schedules.variable("ema_half_life", opts.ema), opts.seed, classes)
        rng = tf.random.Generator.from_seed(opts.seed)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        augment = None
        if opts.augment:
            augment = Augmentation(tuple(opts.augment), opts.augment_p, opts.seed, opts.batch_size * opts.n_critic)
            if opts.schedule.augment_p is not None:  # the probability the augmentation checkpoints, set per step
                schedule = Schedule(opts.augment_p, **dataclasses.asdict(opts.schedule.augment_p))
                schedules.entries.append(Scheduled("augment_p", schedule, augment.p))
        sample_noise = tf.Variable(
            _sample_noise(opts.preview_samples(data_shape), noise_size(generator), classes, opts.seed), trainable=False
        )
    return GAN(
        generator,
        discriminator,
        g_optimizer,
        d_optimizer,
        objective,
        rates,
        rng,
        step,
        sample_noise,
        strategy,
        gon,
        ema,
        augment,
        classes,
        schedules,
    )


def _check_combination(
    cfg: DictConfig,
    opts: TrainConfig,
    objective: Objective,
    gon_objective: DualDiscriminatorObjective | None,
    conditional: bool,
    strategy: tf.distribute.Strategy,
    data_shape: tuple[int, ...],
) -> None:
    """A ConfigError naming the first option that does not combine with the others."""
    if objective.class_weight > 0 and not conditional:
        raise ConfigError(
            "loss.aux_classifier", "ACGAN's class loss needs a conditional model: add model.conditional=true"
        )
    if conditional and gon_objective is not None:
        raise ConfigError(
            "aux", f"{cfg.aux.name} judges samples without their labels; it does not combine with model.conditional"
        )
    if conditional and opts.pack > 1:
        raise ConfigError(
            "train.pack", "packs mix samples of different classes; a conditional model needs train.pack=1"
        )
    replica_batch = opts.batch_size // strategy.num_replicas_in_sync
    if replica_batch % opts.pack:
        raise ConfigError(
            "train.pack",
            f"must divide each replica's share of the batch ({replica_batch}) into whole packs, got {opts.pack}",
        )
    if opts.augment and len(data_shape) != 3:
        raise ConfigError("train.augment", f"transforms images; this dataset's examples have shape {tuple(data_shape)}")
    if opts.schedule.gamma is not None and objective.penalty is None:
        raise ConfigError(
            "train.schedule.gamma",
            f"schedules the penalty's weight (loss.gp_weight), and loss "
            f"{cfg.loss.name} has no penalty here: set loss.penalty",
        )


def _sample_noise(rows: int, z_dim: int, classes: int, seed: int) -> tf.Tensor:
    """The fixed noise of the preview samples (rows, z_dim), from its own stateless seed; a
    conditional run's rounded up to whole rows of ``classes``."""
    if classes:  # one row per class, the same noise in each row: a column is one "style"
        row = tf.random.stateless_normal([-(-rows // classes), z_dim], seed=[seed, 1])
        return tf.tile(row, [classes, 1])
    return tf.random.stateless_normal([rows, z_dim], seed=[seed, 1])


def _optimizers(
    cfg: DictConfig,
    data_shape: tuple[int, ...],
    opts: TrainConfig,
    schedules: Schedules,
    gon_objective: DualDiscriminatorObjective | None,
):
    """(the learning rates by network, G's and D's optimizers, GON or None), in the current scope:
    Adam with train.beta1 and train.beta2 (or its schedule), each rate decayed (train.lr_decay) and
    scaled by the lr schedule alike."""
    # Each optimizer's iterations count its own updates: D (and GON) make n_critic per generator step.
    decay = (opts.steps, opts.steps * opts.n_critic) if opts.lr_decay else (None, None)
    factor = schedules.variable("lr")  # one schedule scales every learning rate alike
    rates = {"g": LearningRate(opts.g_lr, decay[0], factor), "d": LearningRate(opts.d_lr, decay[1], factor)}
    beta2 = schedules.variable("beta2", opts.beta2)
    g_optimizer, d_optimizer = (_adam(rates[name], opts, beta2) for name in ("g", "d"))
    gon = None
    if gon_objective is not None:
        rates["gon"] = LearningRate(opts.d_lr, decay[1], factor)
        network = build_auxiliary(cfg.model, data_shape, gon_objective.heads, opts.precision.value)
        gon = GON(gon_objective, network, _adam(rates["gon"], opts, beta2))
    return rates, g_optimizer, d_optimizer, gon


def _schedules(opts: TrainConfig, gp_weight: float) -> Schedules:
    """The scheduled quantities that need a variable of their own (in the current scope), each
    holding its value at step 0 until the step sets it: the factor of the learning rates (the
    schedule runs from train.g_lr, and both rates are multiplied by its value over g_lr), Adam's
    beta2 (every optimizer's), the penalty's weight, and the moving average's decay per step
    (the schedule's value is a half-life in real images, converted as R3GAN does)."""
    bases = {
        "lr": opts.g_lr,
        "beta2": opts.beta2,
        "gamma": gp_weight,
        "ema": half_life(opts.ema, opts.batch_size) if opts.ema is not None else 0.0,
    }
    converts = {
        "lr": lambda value: value / opts.g_lr,
        "ema": lambda value: decay_from_half_life(value, opts.batch_size),
    }
    schedules = Schedules()
    for name, base in bases.items():
        options = getattr(opts.schedule, name)
        if options is None:
            continue
        schedule = Schedule(base, **dataclasses.asdict(options))
        convert = converts.get(name, lambda value: value)
        variable = tf.Variable(tf.cast(convert(schedule(0)), tf.float32), trainable=False, name=f"scheduled_{name}")
        label = "ema_half_life" if name == "ema" else name  # what its values are
        schedules.entries.append(Scheduled(label, schedule, variable, convert))
    return schedules


def _adam(lr: LearningRate, opts: TrainConfig, beta2: float | tf.Variable) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(lr, beta_1=opts.beta1, beta_2=beta2)
    if opts.precision is Precision.mixed_float16:
        # float16 gradients underflow without it; dynamic: the scale adapts and steps with
        # overflowing gradients are skipped.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
