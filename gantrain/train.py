"""``train(cfg, run_dir)``: build everything from the config, then run the training loop.

Everything that can reject the config (values, data files, model/data pairing) runs before the
run directory is written to, so a rejected command leaves no trace in it.

Usage: ``metrics = train(cfg, "outputs/run")`` -> the last logged metrics.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig
from tqdm import tqdm

from gantrain.config import check_train
from gantrain.data import DATASETS
from gantrain.errors import ConfigError, GantrainError
from gantrain.losses import LOSSES
from gantrain.models import MODELS
from gantrain.run_dir import MetricsLog, RunDir, atomic_write
from gantrain.samples import png_bytes, preview
from gantrain.step import make_train_step
from gantrain.strategies import STRATEGIES

log = logging.getLogger(__name__)
logging.getLogger("absl").setLevel(logging.WARNING)  # TF's per-checkpoint chatter


def train(
    cfg: DictConfig, run_dir: str | Path, resume: bool = False, overrides: list[str] | None = None
) -> dict[str, float]:
    """Train a new run in ``run_dir``, or continue the one there (``resume``)."""
    run = RunDir(run_dir)
    opts = check_train(cfg.train)
    objective = LOSSES.build(cfg.loss)
    dataset = DATASETS.build(cfg.dataset)
    num_samples = opts.num_samples or (64 if dataset.is_image else 1024)

    # Bitwise-reproducible runs and resumes: seeded initialisation, deterministic kernels, and
    # all randomness during training from one checkpointed generator.
    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    strategy = STRATEGIES.build(cfg.strategy)
    if opts.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            "train.batch_size",
            f"{opts.batch_size} does not divide over {strategy.num_replicas_in_sync} replicas",
        )
    with strategy.scope():
        generator, discriminator = MODELS.build(cfg.model, data_shape=dataset.shape)
        g_optimizer = keras.optimizers.Adam(opts.g_lr, beta_1=opts.beta1, beta_2=opts.beta2)
        d_optimizer = keras.optimizers.Adam(opts.d_lr, beta_1=opts.beta1, beta_2=opts.beta2)
        # Built now, so a restore fills existing slots instead of deferring.
        g_optimizer.build(generator.trainable_variables)
        d_optimizer.build(discriminator.trainable_variables)
        rng = tf.random.Generator.from_seed(opts.seed)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        z_dim = generator.input_shape[-1]
        sample_noise = tf.Variable(
            tf.random.stateless_normal([num_samples, z_dim], seed=[opts.seed, 1]), trainable=False
        )
    data = tf.convert_to_tensor(dataset.x)  # the one in-memory copy the step samples from
    real_preview = dataset.x[:num_samples] if not dataset.is_image else None
    del dataset

    checkpoint = tf.train.Checkpoint(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        step=step,
        rng=rng,
        sample_noise=sample_noise,
    )
    manager = tf.train.CheckpointManager(
        checkpoint, run.checkpoints, max_to_keep=opts.keep_checkpoints, checkpoint_name="ckpt"
    )
    metrics_log = MetricsLog(run.metrics)
    if resume:
        _restore(checkpoint, manager)
        metrics_log.truncate_after(int(step))
        run.save_config(cfg)
        log.info("resumed %s at step %d", run.root, int(step))
    else:
        run.check_new()
        if cfg.dataset.get("path"):
            # Saved absolute, so a resume from another working directory finds the data.
            cfg.dataset.path = str(Path(cfg.dataset.path).expanduser().resolve())
        run.save_config(cfg, overrides)
        log.info("new run in %s", run.root)

    train_step = make_train_step(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        objective=objective,
        data=data,
        rng=rng,
        batch_size=opts.batch_size,
        n_critic=opts.n_critic,
        strategy=strategy,
    )
    start = int(step)
    if start >= opts.steps:
        log.info("already at step %d of train.steps=%d: nothing to do", start, opts.steps)
        return {"step": start}

    last: dict[str, float] = {}
    writer = tf.summary.create_file_writer(str(run.tb))
    with writer.as_default(), tqdm(total=opts.steps, initial=start, unit="step", desc="train") as bar:
        since, since_step = time.perf_counter(), start
        for s in range(start + 1, opts.steps + 1):
            metrics = train_step()
            step.assign(s)
            bar.update(1)
            final = s == opts.steps
            if s % opts.log_every == 0 or final:
                now = time.perf_counter()
                last = {"step": s, **{k: float(v) for k, v in metrics.items()}}
                last["steps_per_sec"] = (s - since_step) / max(now - since, 1e-9)
                since, since_step = now, s
                metrics_log.write(last)
                for name, value in last.items():
                    if name != "step":
                        tf.summary.scalar(name, value, step=s)
                bar.set_postfix({k: f"{v:.4g}" for k, v in last.items() if k != "step"})
            if s % opts.sample_every == 0 or final:
                image = preview(generator(sample_noise, training=False).numpy(), real_preview)
                atomic_write(run.sample_path(s), png_bytes(image))
                pixels = np.asarray(image)
                tf.summary.image("samples", pixels.reshape(1, *pixels.shape[:2], -1), step=s)
            if s % opts.checkpoint_every == 0 or final:
                manager.save(checkpoint_number=s)
    writer.flush()
    return last


def _restore(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager) -> None:
    latest = manager.latest_checkpoint
    if latest is None:
        raise GantrainError(f"resume: no checkpoint in {manager.directory} to continue from")
    try:
        checkpoint.restore(latest).assert_existing_objects_matched()
    except (AssertionError, ValueError, tf.errors.OpError) as err:
        first_line = str(err).strip().splitlines()[0]
        raise GantrainError(f"resume: {latest} does not fit this run's config ({first_line})") from None
