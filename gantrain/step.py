"""The adversarial training step: Algorithm 1 of WGAN-GP, for any loss in ``gantrain.losses``.

One call = ``n_critic`` critic updates, each on a fresh real batch and fresh noise, then one
generator update, all in one ``tf.function``. An auxiliary network (``aux=gon``) is updated beside
the critic on the same batches; a moving average of G (``train.ema``) after each generator update.
With top-k training (``train.top_k``) G learns only from the samples D scores best.

Usage::

    step = make_train_step(generator=G, discriminator=D, ...)
    metrics = step()   # one generator step: {"d_loss", "g_loss"[, "gp"]}, scalar tensors
    metrics = step(4)  # four, in one call
"""

from __future__ import annotations

from typing import Callable

import keras
import tensorflow as tf

from gantrain.auxiliary import DualDiscriminatorObjective
from gantrain.ema import MovingAverage
from gantrain.losses import Objective
from gantrain.penalties import critic_scores


def to_model_range(batch: tf.Tensor) -> tf.Tensor:
    """uint8 images -> float32 in [-1, 1]; float data (2-D points) unchanged."""
    if batch.dtype == tf.uint8:
        return tf.cast(batch, tf.float32) / 127.5 - 1.0
    return tf.cast(batch, tf.float32)


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


def make_train_step(
    *,
    generator: keras.Model,
    discriminator: keras.Model,
    g_optimizer: keras.optimizers.Optimizer,
    d_optimizer: keras.optimizers.Optimizer,
    objective: Objective,
    data: tf.Tensor,
    rng: tf.random.Generator,
    batch_size: int,
    n_critic: int,
    strategy: tf.distribute.Strategy,
    jit_compile: bool = False,
    aux_objective: DualDiscriminatorObjective | None = None,
    aux_network: keras.Model | None = None,
    aux_optimizer: keras.optimizers.Optimizer | None = None,
    ema: MovingAverage | None = None,
    top_k: float = 1.0,
    top_k_decay: float = 0.99,
) -> Callable[..., dict[str, tf.Tensor]]:
    """The compiled step; call inside ``strategy.scope()``. ``data``: the whole dataset (N, ...),
    sampled inside the step; ``batch_size``: the global batch; ``rng``: the checkpointed source
    of all randomness; ``jit_compile``: compile with XLA; ``aux_*``: the auxiliary network, its
    optimizer and objective; ``ema``: a moving average of G to update; ``top_k``, ``top_k_decay``:
    the floor and per-epoch decay of :func:`top_k_fraction` (``top_k=1``: every sample counts)."""
    pairs = [(g_optimizer, generator), (d_optimizer, discriminator)]
    if aux_objective is not None:
        pairs.append((aux_optimizer, aux_network))
    if objective.clip is not None:
        # WGAN's weight clipping as Keras constraints: the optimizer applies them right after
        # each of D's updates, on every replica.
        for variable in discriminator.trainable_variables:
            variable.constraint = lambda w, c=objective.clip: tf.clip_by_value(w, -c, c)
    for optimizer, model in pairs:
        if not optimizer.built:
            # Slots made now, in the caller's strategy scope: a checkpoint can fill them, and a
            # mirrored step cannot create variables while tracing.
            optimizer.build(model.trainable_variables)
    z_dim = generator.input_shape[-1]
    replica_batch = batch_size // strategy.num_replicas_in_sync
    num_examples = data.shape[0]
    steps_per_epoch = num_examples / batch_size  # generator steps that draw as many examples as the data holds
    data_device = data.device

    def draw() -> dict[str, tf.Tensor]:
        """All of one step's randomness for the global batch, from one stream, so a step does
        the same arithmetic on any number of replicas."""
        draws = {
            "index": rng.uniform([n_critic, batch_size], 0, num_examples, dtype=tf.int64),
            "d_noise": rng.normal([n_critic, batch_size, z_dim]),
            "g_noise": rng.normal([1, batch_size, z_dim]),
        }
        if objective.penalty is not None:
            draws["eps"] = rng.uniform([n_critic, batch_size])  # one interpolation weight per example
            if objective.penalty.needs_noise:
                draws["noise"] = rng.uniform([n_critic, batch_size, *data.shape[1:]])
        return draws

    def own_share(draws: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        """This replica's slice of the global batch (axis 1 of every draw)."""
        start = tf.distribute.get_replica_context().replica_id_in_sync_group * replica_batch
        return {name: value[:, start : start + replica_batch] for name, value in draws.items()}

    def average(per_example: tf.Tensor) -> tf.Tensor:
        # Over the global batch: Keras 3 optimizers sum the replicas' gradients.
        return tf.nn.compute_average_loss(per_example, global_batch_size=batch_size)

    def critic(x: tf.Tensor) -> tf.Tensor:
        return tf.reshape(discriminator(x, training=True), [-1])

    def critic_update(mine: dict[str, tf.Tensor], i: int) -> tuple[tf.Tensor, tf.Tensor]:
        # A fresh real batch, gathered where the dataset lives (host memory), so only the batch
        # travels to the replica's device ...
        with tf.device(data_device):
            real = tf.gather(data, mine["index"][i])
        real = to_model_range(real)  # on the replica's device: uint8 is a quarter of the bytes
        fake = generator(mine["d_noise"][i], training=True)  # ... and fresh noise, every update
        eps = mine["eps"][i] if objective.penalty is not None else None
        noise = mine["noise"][i] if "noise" in mine else None
        with tf.GradientTape() as tape:
            d_real, d_fake, penalty = critic_scores(
                critic, real, fake, objective.penalty, eps, noise, getattr(d_optimizer, "dynamic_scale", 1.0)
            )
            d_loss = average(objective.d_loss(d_real, d_fake))
            penalty = average(penalty)
            total = d_loss + objective.penalty_weight * penalty
            # Mixed float16: the optimizer scales the loss up and its apply() scales back down.
            scaled_total = d_optimizer.scale_loss(total)
        variables = discriminator.trainable_variables
        d_optimizer.apply(tape.gradient(scaled_total, variables), variables)
        aux_loss = aux_update(real, fake) if aux_objective is not None else None
        return total, penalty, aux_loss

    def aux_update(real: tf.Tensor, fake: tf.Tensor) -> tf.Tensor:
        """The auxiliary network's update, on the critic's batch."""
        with tf.GradientTape() as tape:
            h_real, h_fake = tf.split(aux_network(tf.concat([real, fake], 0), training=True), 2)
            loss = average(aux_objective.network_loss(h_real, h_fake))
            scaled = aux_optimizer.scale_loss(loss)
        variables = aux_network.trainable_variables
        aux_optimizer.apply(tape.gradient(scaled, variables), variables)
        return loss

    def generator_update(mine: dict[str, tf.Tensor]) -> tf.Tensor:
        with tf.GradientTape() as tape:
            fake = generator(mine["g_noise"][0], training=True)
            scores = critic(fake)
            per_example = objective.g_loss(scores)
            if aux_objective is not None:
                per_example += aux_objective.generator_loss(aux_network(fake, training=True))
            if top_k < 1:
                # Samples D rates worst get no say: their gradients can pull the others away
                # from the modes (Sinha et al. 2020). Each replica keeps the best of its own share;
                # the mean is over the kept samples of all replicas.
                fraction = top_k_fraction(g_optimizer.iterations, top_k, top_k_decay, steps_per_epoch)
                g_loss = tf.nn.compute_average_loss(best_scored(per_example, scores, fraction))
            else:
                g_loss = average(per_example)
            scaled_g_loss = g_optimizer.scale_loss(g_loss)
        variables = generator.trainable_variables
        g_optimizer.apply(tape.gradient(scaled_g_loss, variables), variables)
        return g_loss

    def replica_step(draws: dict[str, tf.Tensor]) -> dict[str, tf.Tensor]:
        mine = own_share(draws)
        d_sum, penalty_sum, aux_sum = tf.constant(0.0), tf.constant(0.0), tf.constant(0.0)
        # A Python loop (unrolled when traced): a tf.while_loop cannot hold the gradient
        # all-reduce that each update does under a multi-replica strategy.
        for i in range(n_critic):
            d_loss, penalty, aux_loss = critic_update(mine, i)
            d_sum += d_loss
            penalty_sum += penalty
            if aux_loss is not None:
                aux_sum += aux_loss
        metrics = {"d_loss": d_sum / n_critic, "g_loss": generator_update(mine)}
        if objective.penalty is not None:
            metrics["gp"] = penalty_sum / n_critic
        if aux_objective is not None:
            metrics["aux_loss"] = aux_sum / n_critic
        return metrics

    def one_step() -> dict[str, tf.Tensor]:
        per_replica = strategy.run(replica_step, args=(draw(),))
        if ema is not None:
            ema.update()  # here, in cross-replica context: one average of the synchronised G
        return {
            name: strategy.reduce(tf.distribute.ReduceOp.SUM, value, axis=None)
            for name, value in per_replica.items()
        }

    @tf.function(jit_compile=jit_compile)
    def train_steps(n: int = 1) -> dict[str, tf.Tensor]:
        """``n`` generator steps in one call (fewer round trips to Python); the last one's metrics."""
        metrics = one_step()
        for _ in tf.range(n - 1):
            metrics = one_step()
        return metrics

    return train_steps
