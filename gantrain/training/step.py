"""The adversarial training step: Algorithm 1 of WGAN-GP, for any loss in ``gantrain.training.losses``.

One call = ``n_critic`` critic updates, each on a fresh real batch and fresh noise, then one
generator update, all in one ``tf.function``. An auxiliary network (``aux=gon``) is updated beside
the critic on the same batches; a moving average of G (``train.ema``) after each generator update.
With top-k training (``train.top_k``) G learns only from the samples D scores best. With
``train.augment`` every call of D sees its images through fresh random transforms
(``gantrain.training.augment``). With packing (``train.pack``, PacGAN) D judges packs of m samples side by
side: its losses, and the penalty's points, are per pack. A conditional GAN (``model.conditional``)
gives G and D a label with every example: real examples bring their own, fake ones get labels
drawn uniformly; ACGAN's class loss (``loss.aux_classifier``) joins D's and G's losses. A
relativistic loss (``loss=rpgan``) pairs each fake with a real example, in G's update too, which
takes a fresh real batch of its own. Real batches are sampled from the in-memory dataset, or read
from a stream. Scheduled hyperparameters (``train.schedule``) are set from the step counter
(``gan.step``, which each step advances) before the step's updates, and reported with its metrics.

Usage::

    step = make_train_step(build_gan(cfg, data_shape), data, check_train(cfg.train))
    metrics = step()   # one generator step: {"d_loss", "g_loss"[, "gp"][, "schedule/lr", ...]}, scalar tensors
    metrics = step(4)  # four, in one call
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

from gantrain.config import TrainConfig
from gantrain.errors import ConfigError
from gantrain.models.conditioning import generate, noise_size
from gantrain.training.gan import GAN
from gantrain.training.losses import class_cross_entropy
from gantrain.training.penalties import critic_scores


def to_model_range(batch: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [-1, 1]; float data (2-D points) unchanged."""
    if batch.dtype == tf.uint8:
        return tf.cast(batch, tf.float32) / 127.5 - 1.0
    return tf.cast(batch, tf.float32)


def pack(x: tf.Tensor, m: int) -> tf.Tensor:
    """Consecutive groups of ``m`` examples side by side along the last axis: (B, ..., C) ->
    (B / m, ..., m * C), example j of a pack in channels j * C ... j * C + C - 1."""
    if m == 1:
        return x
    grouped = tf.reshape(x, [-1, m, *x.shape[1:]])  # (B/m, m, ..., C)
    last = len(grouped.shape) - 1
    moved = tf.transpose(grouped, [0, *range(2, last), 1, last])  # (B/m, ..., m, C)
    return tf.reshape(moved, [-1, *x.shape[1:-1], m * x.shape[-1]])


def per_pack(per_example: tf.Tensor, m: int) -> tf.Tensor:
    """The mean of each pack's ``m`` entries (B,) -> (B / m,): averaged over packs, the mean over examples."""
    return per_example if m == 1 else tf.reduce_mean(tf.reshape(per_example, [-1, m]), axis=1)


def top_k_fraction(iteration: tf.Tensor, floor: float, decay: float, steps_per_epoch: float) -> tf.Tensor:
    """The share of each batch that G learns from in top-k training (Sinha et al. 2020): the whole
    batch at first, ``decay`` times less per epoch of generator steps, never below ``floor``."""
    epochs = tf.cast(iteration, tf.float32) / steps_per_epoch
    return tf.maximum(tf.constant(floor, tf.float32), tf.constant(decay, tf.float32) ** epochs)


def best_scored(per_example: tf.Tensor, scores: tf.Tensor, fraction: tf.Tensor) -> tf.Tensor:
    """The entries of ``per_example`` (B,) whose ``scores`` (B,) are among the ceil(fraction * B)
    highest, best first."""
    k = tf.cast(tf.math.ceil(fraction * tf.cast(tf.size(scores), tf.float32)), tf.int32)
    return tf.gather(per_example, tf.math.top_k(scores, k).indices)


def mean_of_best(
    per_example: tf.Tensor, scores: tf.Tensor, fraction: tf.Tensor, fixed_shapes: bool = False
) -> tf.Tensor:
    """The mean of :func:`best_scored` over the kept entries of all replicas. ``fixed_shapes`` (for
    XLA): sort the whole batch and zero all but the best instead of slicing them out. A slice of
    ceil(fraction * B) entries has a shape XLA must know when it compiles, so it recompiles at
    every call (measured: 7.6 s per grid25 step); the masked sum has the batch's fixed shape."""
    if not fixed_shapes:
        return tf.nn.compute_average_loss(best_scored(per_example, scores, fraction))
    size = per_example.shape[0]
    k = tf.math.ceil(fraction * size)
    ranked = tf.gather(per_example, tf.math.top_k(scores, size).indices)
    kept = tf.where(tf.range(size, dtype=k.dtype) < k, ranked, tf.zeros_like(ranked))
    replicas = tf.distribute.get_replica_context().num_replicas_in_sync
    return tf.reduce_sum(kept) / (tf.cast(k, per_example.dtype) * replicas)


@dataclass
class RealBatches:
    """Real examples read from a stream (``gantrain.data.stream``) rather than sampled from memory:
    each element of ``iterator`` is one step's n_critic global batches, (n_critic * batch, ...)."""

    iterator: tf.data.Iterator
    size: int  # examples in the dataset


def make_train_step(
    gan: GAN, data: tf.Tensor | RealBatches, opts: TrainConfig, labels: tf.Tensor | None = None
) -> Callable[..., dict[str, tf.Tensor]]:
    """The compiled step of ``gan`` (:func:`gantrain.training.gan.build_gan`). ``data``: the whole dataset
    (N, ...), sampled inside the step, or a stream's batches; ``labels``: the dataset's labels (N,)
    for a conditional GAN; ``opts``: the ``train`` keys it reads,
    ``batch_size`` (the global batch), ``n_critic``, ``jit_compile`` (XLA), ``top_k`` and
    ``top_k_decay`` (the floor and per-epoch decay of :func:`top_k_fraction`; ``top_k=1``: every
    sample counts)."""
    return TrainStep(gan, data, opts, labels).compiled


def check_labels(gan: GAN, data: tf.Tensor | RealBatches, labels: tf.Tensor | None) -> None:
    """A conditional GAN samples its real examples' labels with them, so they must be in memory."""
    if gan.num_classes and (labels is None or isinstance(data, RealBatches)):
        raise ConfigError("model.conditional", "needs the dataset's labels in memory (a streamed folder has none)")


def clip_weights(discriminator, clip: float | None) -> None:
    """WGAN's weight clipping as Keras constraints: the optimizer applies them right after each of
    D's updates, on every replica (``clip`` None: none)."""
    if clip is not None:
        for variable in discriminator.trainable_variables:
            variable.constraint = lambda w, c=clip: tf.clip_by_value(w, -c, c)


def build_optimizer_slots(gan: GAN) -> None:
    """Every optimizer's slots made now, in the strategy's scope: a checkpoint can fill them, and a
    mirrored step cannot create variables while tracing."""
    pairs = [(gan.g_optimizer, gan.generator), (gan.d_optimizer, gan.discriminator)]
    if gan.gon is not None:
        pairs.append((gan.gon.optimizer, gan.gon.network))
    with gan.strategy.scope():
        for optimizer, model in pairs:
            if not optimizer.built:
                optimizer.build(model.trainable_variables)


class TrainStep:
    """Algorithm 1, one method per part: the draws for the global batch, a critic update, the
    auxiliary network's update, the generator update; :attr:`compiled` runs n steps per call."""

    def __init__(self, gan: GAN, data: tf.Tensor | RealBatches, opts: TrainConfig, labels: tf.Tensor | None = None):
        check_labels(gan, data, labels)
        self.gan, self.objective = gan, gan.objective
        self.data: tf.Tensor | None = None if isinstance(data, RealBatches) else data
        self.stream: RealBatches | None = data if isinstance(data, RealBatches) else None
        self.classes, self.labels = gan.num_classes, labels
        if isinstance(data, RealBatches):
            self.size, self.example_shape = data.size, tuple(data.iterator.element_spec.shape[1:])
        else:
            self.size, self.example_shape = data.shape[0], tuple(data.shape[1:])
        self.batch_size, self.n_critic, self.top_k, self.top_k_decay, self.pack = (
            opts.batch_size,
            opts.n_critic,
            opts.top_k,
            opts.top_k_decay,
            opts.pack,
        )
        self.packs = self.batch_size // self.pack  # what D judges per global batch
        # Fresh real batches per step: one per critic update, and one for G's relativistic loss.
        self.real_batches = self.n_critic + int(self.objective.relativistic)
        self.z_dim = noise_size(gan.generator)
        self.replica_batch = self.batch_size // gan.strategy.num_replicas_in_sync
        # Generator steps that draw as many examples as the data holds.
        self.steps_per_epoch = self.size / self.batch_size
        self.jit_compile = opts.jit_compile
        clip_weights(gan.discriminator, self.objective.clip)
        build_optimizer_slots(gan)
        # n is a tensor: one trace (and one XLA compilation) serves calls of any length, so a run's
        # last call, shorter when the steps left are not a multiple of steps_per_call, does not trace again.
        # No AutoGraph: the step's one graph loop is written as one, and every other branch and loop
        # is on Python values. Converting the step's 31 functions to graph code took 2 of the first
        # trace's 2.8 s (a tiny DCGAN, measured on a 2-core CPU), at every start of a run.
        self.compiled = tf.function(
            self.steps, input_signature=[tf.TensorSpec([], tf.int32)], jit_compile=opts.jit_compile, autograph=False
        )

    def steps(self, n: tf.Tensor | int = 1) -> dict[str, tf.Tensor]:
        """``n`` generator steps in one call (fewer round trips to Python); the last one's metrics.
        Every step runs in the loop's body, the first too: XLA compiles code outside a loop apart
        from its body, and may round differently there (batch norm's moving statistics did), so a
        step would depend on where in a call it falls and a resumed run would drift from a straight one."""
        metrics = {name: tf.constant(0.0) for name in self.metric_names}  # the loop's carried structure
        _, metrics = tf.while_loop(lambda i, _: i < n, lambda i, _: (i + 1, self.one_step()), (tf.constant(0), metrics))
        return metrics

    @property
    def metric_names(self) -> list[str]:
        """What each step reports, known before it runs."""
        names = ["d_loss", "g_loss"]
        if self.objective.penalty is not None:
            names.append("gp")
        if self.gan.gon is not None:
            names.append("aux_loss")  # the key of the aux group's network, GON
        if self.gan.augment is not None and self.gan.augment.adaptive:
            names += ["real_sign", "augment_p"]  # ADA's r_t: the mean of sign(D(real)), and its p
        return names + self.gan.schedules.names

    def one_step(self) -> dict[str, tf.Tensor]:
        strategy = self.gan.strategy
        # Here, in cross-replica context, before any update reads them: every replica gets the
        # values of this step, a function of the (checkpointed) count of the steps before it.
        scheduled = self.gan.schedules.set(self.gan.step)
        per_replica = strategy.run(self.replica_step, args=(self.draw(),))
        if self.gan.ema is not None:
            self.gan.ema.update()  # here, in cross-replica context: one average of the synchronised G
        metrics = {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None) for name, value in per_replica.items()
        }
        if "real_sign" in metrics:  # ADA: D's confidence on the reals steers the augmentation
            assert self.gan.augment is not None  # metric_names measures real_sign for ADA only
            self.gan.augment.observe(metrics["real_sign"])
            metrics["augment_p"] = tf.identity(self.gan.augment.p)
        self.gan.step.assign_add(1)
        return {**metrics, **scheduled}

    def draw(self) -> dict[str, tf.Tensor]:
        """All of one step's randomness for the global batch, from one stream, so a step does the
        same arithmetic on any number of replicas."""
        rng, n_critic, batch = self.gan.rng, self.n_critic, self.batch_size
        reals = self.real_batches
        if self.stream is None:
            draws = {"index": rng.uniform([reals, batch], 0, self.size, dtype=tf.int64)}
        else:  # the stream's next batches, in its seeded order
            draws = {"real": tf.reshape(self.stream.iterator.get_next(), [reals, batch, *self.example_shape])}
        draws["d_noise"] = rng.normal([n_critic, batch, self.z_dim])
        draws["g_noise"] = rng.normal([1, batch, self.z_dim])
        if self.objective.penalty is not None:
            draws["eps"] = rng.uniform([n_critic, batch])  # one interpolation weight per example
            if self.objective.penalty.needs_noise:
                draws["noise"] = rng.uniform([n_critic, batch, *self.example_shape])
        if self.classes:  # the fake examples' labels, uniform over the classes
            draws["d_labels"] = rng.uniform([n_critic, batch], 0, self.classes, dtype=tf.int64)
            draws["g_labels"] = rng.uniform([1, batch], 0, self.classes, dtype=tf.int64)
        augment = self.gan.augment
        if augment is not None:  # from the augmentation's own stream: the draws above stay as they are
            penalty = self.objective.penalty
            calls = 3 if penalty is not None and penalty.points is not None else 2  # real, fake (and points)
            draws["d_augment"] = augment.rng.uniform([n_critic, batch, calls, augment.width])
            g_calls = 1 + int(self.objective.relativistic)  # fake (and G's reals)
            draws["g_augment"] = augment.rng.uniform([1, batch, g_calls, augment.width])
        return draws

    def replica_step(self, draws: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        # This replica's slice of the global batch (axis 1 of every draw).
        start = tf.distribute.get_replica_context().replica_id_in_sync_group * self.replica_batch
        mine = {name: value[:, start : start + self.replica_batch] for name, value in draws.items()}
        d_sum, penalty_sum, gon_sum, sign_sum = (tf.constant(0.0) for _ in range(4))
        # A Python loop (unrolled when traced): a tf.while_loop cannot hold the gradient
        # all-reduce that each update does under a multi-replica strategy, and on one device a graph
        # loop here (nested in steps_per_call's loop) made Grappler create one of its temporary
        # variables twice (AlreadyExistsError), so it was withdrawn there too.
        for i in range(self.n_critic):
            d_loss, penalty, gon_loss, real_sign = self.critic_update(mine, i)
            d_sum += d_loss
            penalty_sum += penalty
            sign_sum += real_sign
            if gon_loss is not None:
                gon_sum += gon_loss
        sums = {"d_loss": d_sum, "gp": penalty_sum, "aux_loss": gon_sum, "real_sign": sign_sum}
        means = {name: total / self.n_critic for name, total in sums.items()}
        means["g_loss"] = self.generator_update(mine)
        # In metric_names' order; augment_p is added by one_step, after the replicas' results are summed.
        return {name: means[name] for name in self.metric_names if name in means}

    def average(self, per_example: tf.Tensor, count: int | None = None) -> tf.Tensor:
        """The mean over the global batch's ``count`` entries (default: examples; D's losses are
        per pack): Keras 3 optimizers sum the replicas' gradients."""
        return tf.nn.compute_average_loss(per_example, global_batch_size=count or self.batch_size)

    def critic(
        self, x: tf.Tensor, labels: tf.Tensor | None = None, augment_draws: tf.Tensor | None = None
    ) -> tuple[tf.Tensor, tf.Tensor | None]:
        """D's scores (B / pack,) of ``x`` (B, ...) with their ``labels`` (conditional), seen
        through the augmentation when it is on, each example on its own, then packed; and D's class
        logits (B, classes) when it has ACGAN's head (else None)."""
        if augment_draws is not None:
            assert self.gan.augment is not None  # draws are made for an augmentation only
            x = self.gan.augment(x, augment_draws)
        x = pack(x, self.pack)
        out = self.gan.discriminator(x if labels is None else [x, tf.cast(labels, tf.int32)], training=True)
        scores, class_logits = (out[0], out[1]) if isinstance(out, (list, tuple)) else (out, None)
        return tf.reshape(scores, [-1]), class_logits

    def real_batch(self, mine: dict[str, tf.Tensor], i: int) -> tuple[tf.Tensor, tf.Tensor | None]:
        """The ``i``-th fresh real batch of this step in [-1, 1], and its labels (conditional)."""
        # Gathered where the dataset lives (host memory), so only the batch travels to the
        # replica's device, where it is converted: uint8 is a quarter of the bytes.
        if "real" in mine:
            real = mine["real"][i]
        else:
            assert self.data is not None  # in memory: the draws are indices into it
            with tf.device(self.data.device):
                real = tf.gather(self.data, mine["index"][i])
        labels = None
        if self.classes:
            assert self.labels is not None  # a conditional GAN's step has them (check_labels)
            with tf.device(self.labels.device):
                labels = tf.gather(self.labels, mine["index"][i])
        return to_model_range(real), labels

    def critic_update(
        self, mine: dict[str, tf.Tensor], i: int
    ) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor | None, tf.Tensor]:
        gan, objective = self.gan, self.objective
        real, real_labels = self.real_batch(mine, i)  # a fresh real batch ...
        fake_labels = mine["d_labels"][i] if self.classes else None  # drawn with the noise
        fake = generate(
            gan.generator, mine["d_noise"][i], fake_labels, training=True
        )  # ... and fresh noise, every update
        eps = mine["eps"][i] if objective.penalty is not None else None
        if eps is not None and self.pack > 1:  # a pack's point lies on the line between two packs
            eps = tf.repeat(eps[:: self.pack], self.pack)
        noise = mine["noise"][i] if "noise" in mine else None
        # D's views: real and fake in one call, then the penalty's points, which carry the real
        # examples' labels; fresh transforms for each view when augmenting.
        both_labels = tf.concat([real_labels, fake_labels], 0) if self.classes else None
        views = mine["d_augment"][i] if "d_augment" in mine else None  # (B, views, width)
        both_views = tf.concat([views[:, 0], views[:, 1]], 0) if views is not None else None

        def critic(x):  # D's scores and ACGAN's class logits, of real and fake in one call
            return self.critic(x, both_labels, both_views)

        def point_critic(x):  # a penalty with points of its own (gp, dragan): the third view
            return self.critic(x, real_labels, views[:, 2] if views is not None else None)[0]

        with tf.GradientTape() as tape:
            d_real, d_fake, penalty, class_logits = critic_scores(
                critic,
                real,
                fake,
                objective.penalty,
                eps,
                noise,
                getattr(gan.d_optimizer, "dynamic_scale", 1.0),
                point_critic,
                self.pack,
            )
            d_loss = self.average(objective.d_loss(d_real, d_fake), self.packs)
            if objective.class_weight > 0:  # ACGAN: D names the class of real and fake examples
                # Summed over real and fake, then divided by the batch: the two means added.
                d_loss += objective.class_weight * self.average(class_cross_entropy(both_labels, class_logits))
            penalty = self.average(penalty, self.packs)
            total = d_loss + objective.penalty_weight * penalty
            # Mixed float16: the optimizer scales the loss up and its apply() scales back down.
            scaled_total = gan.d_optimizer.scale_loss(total)
        variables = gan.discriminator.trainable_variables
        gan.d_optimizer.apply(tape.gradient(scaled_total, variables), variables)
        gon_loss = self.gon_update(real, fake) if gan.gon is not None else None
        real_sign = tf.reduce_sum(tf.sign(d_real)) / self.packs  # this replica's share of the mean
        return total, penalty, gon_loss, real_sign

    def gon_update(self, real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        """GON's update (``aux=gon``), on the critic's batch."""
        gon = self.gan.gon
        assert gon is not None  # called for aux=gon only
        with tf.GradientTape() as tape:
            h_real, h_fake = tf.split(gon.network(tf.concat([real, fake], 0), training=True), 2)
            loss = self.average(gon.objective.network_loss(h_real, h_fake))
            scaled = gon.optimizer.scale_loss(loss)
        variables = gon.network.trainable_variables
        gon.optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    def generator_scores(self, fake: tf.Tensor, labels: tf.Tensor | None, mine: dict[str, tf.Tensor]):
        """D's scores of G's ``fake`` batch and its class logits; and, for a relativistic loss, D's
        scores of a fresh real batch in the same call (else None)."""
        views = mine["g_augment"][0] if "g_augment" in mine else None  # (B, calls, width)
        if not self.objective.relativistic:
            scores, class_logits = self.critic(fake, labels, views[:, 0] if views is not None else None)
            return scores, class_logits, None
        real, real_labels = self.real_batch(mine, self.n_critic)
        both_labels = tf.concat([labels, real_labels], 0) if self.classes else None
        both_views = tf.concat([views[:, 0], views[:, 1]], 0) if views is not None else None
        scores, class_logits = self.critic(tf.concat([fake, real], 0), both_labels, both_views)
        d_fake, d_real = tf.split(scores, 2)
        return d_fake, class_logits[: fake.shape[0]] if class_logits is not None else None, d_real

    def generator_update(self, mine: dict[str, tf.Tensor]) -> tf.Tensor:
        gan = self.gan
        labels = mine["g_labels"][0] if self.classes else None
        with tf.GradientTape() as tape:
            fake = generate(gan.generator, mine["g_noise"][0], labels, training=True)
            scores, class_logits, d_real = self.generator_scores(fake, labels, mine)
            # per pack; a relativistic G compares each fake with its paired real example
            per_example = self.objective.g_loss(scores) if d_real is None else self.objective.g_loss(scores, d_real)
            if self.objective.class_weight > 0:  # ACGAN: G's samples of class y should be named y
                per_example += self.objective.class_weight * class_cross_entropy(labels, class_logits)
            if gan.gon is not None:  # GON judges examples, one by one
                per_example += per_pack(
                    gan.gon.objective.generator_loss(gan.gon.network(fake, training=True)), self.pack
                )
            if self.top_k < 1:
                # Samples D rates worst get no say: their gradients can pull the others away
                # from the modes (Sinha et al. 2020). Each replica keeps the best of its own share;
                # the mean is over the kept samples of all replicas.
                fraction = top_k_fraction(
                    gan.g_optimizer.iterations, self.top_k, self.top_k_decay, self.steps_per_epoch
                )
                g_loss = mean_of_best(per_example, scores, fraction, fixed_shapes=self.jit_compile)
            else:
                g_loss = self.average(per_example, self.packs)
            scaled_g_loss = gan.g_optimizer.scale_loss(g_loss)
        variables = gan.generator.trainable_variables
        gan.g_optimizer.apply(tape.gradient(scaled_g_loss, variables), variables)
        return g_loss
