"""``train(cfg, run_dir)``: build everything from the config, then run the training loop.

Everything that can reject the config (values, data files, model/data pairing) runs before the
run directory is written to, so a rejected command leaves no trace in it.

Usage: ``metrics = train(cfg, "outputs/run")`` -> the last logged metrics.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import signal
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gantrain.auxiliary import AUXILIARIES
from gantrain.checkpoints import BestCheckpoint, Checkpoints
from gantrain.config import NanPolicy, Precision, check_eval, check_train
from gantrain.data import DATASETS
from gantrain.ema import MovingAverage
from gantrain.environment import cpu_has_bfloat16, describe
from gantrain.errors import ConfigError, GantrainError
from gantrain.evaluate import draw, sample_metrics
from gantrain.interrupts import GracefulStop
from gantrain.learning_rate import LearningRate
from gantrain.losses import LOSSES
from gantrain.metric_table import default_num_samples, evaluation_plan, higher_is_better
from gantrain.models import build_auxiliary, build_models
from gantrain.run_dir import MetricsLog, RunDir, atomic_write
from gantrain.samples import png_bytes, preview
from gantrain.step import make_train_step
from gantrain.strategies import STRATEGIES, devices

log = logging.getLogger(__name__)
logging.getLogger("absl").setLevel(logging.WARNING)  # TF's per-checkpoint chatter


def train(
    cfg: DictConfig, run_dir: str | Path, resume: bool = False, overrides: list[str] | None = None
) -> dict[str, float]:
    """Train a new run in ``run_dir``, or continue the one there (``resume``).

    Returns the last logged metrics; ``stopped_by`` names the signal if one ended the run early.
    """
    run = RunDir(run_dir)
    opts = check_train(cfg.train)
    objective = LOSSES.build(cfg.loss)
    aux_objective = AUXILIARIES.build(cfg.aux) if cfg.get("aux") else None
    dataset = DATASETS.build(cfg.dataset)
    num_samples = opts.num_samples or (64 if dataset.is_image else 1024)
    evals = check_eval(cfg.get("eval"))
    plan = evaluation_plan(dataset.name, evals.features)
    if evals.select is not None and evals.select not in plan.metrics:
        raise ConfigError("eval.select", f"'{evals.select}' is not measured here; choose from {', '.join(plan.metrics)}")
    eval_samples = evals.num_samples or default_num_samples(dataset.name)
    if evals.every is not None:
        from gantrain.features import check_available

        check_available(cfg.dataset, plan.extractor, evals.weights, evals.inception_graph)
    # What evaluations need of the data: mixture centres, or a few real images for pixel statistics.
    eval_data = dataclasses.replace(dataset, x=dataset.x[:eval_samples])

    if len(dataset.x) < opts.batch_size:
        log.warning("train.batch_size=%d is larger than the dataset (%d examples): every batch repeats "
                    "examples; use a smaller train.batch_size or more data", opts.batch_size, len(dataset.x))
    strategy = STRATEGIES.build(cfg.strategy)  # first: multi-worker setup must precede other ops
    if opts.precision is Precision.mixed_bfloat16 and "CPU" in devices(strategy)[0].upper() and not cpu_has_bfloat16():
        log.warning("train.precision=mixed_bfloat16: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), "
                    "so TensorFlow emulates them and a step is many times slower than in float32")
    if opts.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            "train.batch_size",
            f"{opts.batch_size} does not divide over {strategy.num_replicas_in_sync} replicas",
        )
    if not strategy.extended.should_checkpoint:
        # Every worker takes part in saving (a collective), but only the chief writes the run
        # directory; each other worker keeps its own copy inside it.
        run = RunDir(run.root / "workers" / str(strategy.cluster_resolver.task_id))
    # Bitwise-reproducible runs and resumes: seeded initialisation, deterministic kernels, and
    # all randomness during training from one checkpointed generator.
    keras.utils.set_random_seed(opts.seed)
    tf.config.experimental.enable_op_determinism()
    data = tf.convert_to_tensor(dataset.x)  # the one in-memory copy the step samples from
    data_shape = dataset.shape
    real_preview = dataset.x[:num_samples] if not dataset.is_image else None
    del dataset
    with strategy.scope():
        generator, discriminator = build_models(cfg.model, data_shape, opts.precision.value)
        # Each optimizer's iterations count its own updates: D (and GON) make n_critic per step.
        decay = (opts.steps, opts.steps * opts.n_critic) if opts.lr_decay else (None, None)
        learning_rates = {
            "g": LearningRate(opts.g_lr, decay[0]),
            "d": LearningRate(opts.d_lr, decay[1]),
        }
        g_optimizer, d_optimizer = (
            _adam(learning_rates[name], opts.beta1, opts.beta2, opts.precision) for name in ("g", "d")
        )
        optional = {}  # what only some configs have: checkpointed when present
        if aux_objective is not None:
            learning_rates["aux"] = LearningRate(opts.d_lr, decay[1])
            optional["aux_network"] = build_auxiliary(
                cfg.model, data_shape, aux_objective.heads, opts.precision.value
            )
            optional["aux_optimizer"] = _adam(learning_rates["aux"], opts.beta1, opts.beta2, opts.precision)
        ema = MovingAverage(generator, opts.ema, opts.seed) if opts.ema is not None else None
        if ema is not None:
            optional["ema_generator"] = ema.model
        rng = tf.random.Generator.from_seed(opts.seed)
        step = tf.Variable(0, dtype=tf.int64, trainable=False)
        z_dim = generator.input_shape[-1]
        sample_noise = tf.Variable(
            tf.random.stateless_normal([num_samples, z_dim], seed=[opts.seed, 1]), trainable=False
        )
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
            jit_compile=opts.jit_compile,
            aux_objective=aux_objective,
            aux_network=optional.get("aux_network"),
            aux_optimizer=optional.get("aux_optimizer"),
            ema=ema,
            top_k=opts.top_k,
            top_k_decay=opts.top_k_decay,
        )
    sampler = ema.model if ema is not None else generator  # previews from the averaged G when on

    ckpts = Checkpoints(
        run.checkpoints,
        keep=opts.keep_checkpoints,
        generator=generator,
        discriminator=discriminator,
        g_optimizer=g_optimizer,
        d_optimizer=d_optimizer,
        step=step,
        rng=rng,
        sample_noise=sample_noise,
        lr_scales=[rate.scale for rate in learning_rates.values()],
        **optional,
    )
    best = None
    if evals.select is not None:
        best = BestCheckpoint(run.checkpoints / "best", ckpts.checkpoint, evals.select, higher_is_better(evals.select))
    metrics_log = MetricsLog(run.metrics)
    if resume:
        start = ckpts.restore()
        metrics_log.truncate_after(start)
        run.save_config(cfg)
        log.info("resumed %s at step %d", run.root, start)
    else:
        run.check_new()
        if cfg.dataset.get("path"):
            # Saved absolute, so a resume from another working directory finds the data.
            cfg.dataset.path = str(Path(cfg.dataset.path).expanduser().resolve())
        run.save_config(cfg, overrides)
        if ema is not None:
            ema.standing_statistics()
        ckpts.save(0)  # a crash or divergence in the first steps has a start to return to
        start = 0
        log.info("new run in %s", run.root)
    if start >= opts.steps:
        log.info("already at step %d of train.steps=%d: nothing to do", start, opts.steps)
        return {"step": start}

    environment = describe(devices(strategy))
    run.record_environment({"step": start, **environment})
    last: dict[str, float] = {}
    rollbacks = 0
    writer = tf.summary.create_file_writer(str(run.tb))
    with writer.as_default():
        tf.summary.text("config", f"```\n{OmegaConf.to_yaml(cfg)}```", step=start)
        tf.summary.text("environment", f"```\n{json.dumps(environment, indent=2)}\n```", step=start)
    with (
        writer.as_default(),
        GracefulStop() as stop,
        tqdm(total=opts.steps, initial=start, unit="step", desc="train") as bar,
        logging_redirect_tqdm(),  # log lines above the bar instead of through it
    ):
        s, stopping = start, False
        shown: dict[str, float] = {}  # what the progress bar shows
        since, since_step = time.perf_counter(), s
        while s < opts.steps and not stopping:
            n = min(opts.steps_per_call, opts.steps - s)
            metrics = {name: float(value) for name, value in stop.call(train_step, n).items()}
            s += n
            step.assign(s)
            # This call's losses from the very first step; rates and evaluations as they are logged.
            shown.update(metrics)
            bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()}, refresh=False)
            bar.update(n)
            # Read the signal flag once: a signal after this line is handled after the next call.
            stopping = stop.requested
            final = s == opts.steps or stopping
            due = {  # a multiple of each period passed in this call
                "log": s // opts.log_every > (s - n) // opts.log_every or final,
                "sample": s // opts.sample_every > (s - n) // opts.sample_every or final,
                "checkpoint": s // opts.checkpoint_every > (s - n) // opts.checkpoint_every or final,
                "eval": evals.every is not None and (s // evals.every > (s - n) // evals.every or final),
            }
            # Losses every call; weights before anything is logged, drawn or saved from them, so
            # bad weights never reach a checkpoint.
            bad = [name for name, value in metrics.items() if not math.isfinite(value)]
            if not bad and any(due.values()) and not ckpts.weights_finite():
                bad = ["weights"]
            if bad:
                problem = f"non-finite {', '.join(bad)} at step {s}"
                if opts.nan_policy is NanPolicy.stop or rollbacks == opts.max_rollbacks:
                    raise GantrainError(
                        f"training diverged: {problem}; the last good checkpoint (step "
                        f"{ckpts.latest_step()}) is kept. Lower train.g_lr / train.d_lr, or set "
                        "train.nan_policy=rollback"
                    )
                rollbacks += 1
                s = ckpts.restore()
                for rate in learning_rates.values():
                    rate.scale.assign(rate.scale * opts.rollback_lr_factor)
                metrics_log.truncate_after(s)
                bar.n = s
                bar.refresh()
                since, since_step = time.perf_counter(), s
                log.warning(
                    "%s: rolled back to step %d with learning rates x%g (rollback %d of %d)",
                    problem, s, opts.rollback_lr_factor, rollbacks, opts.max_rollbacks,
                )
                continue
            if ema is not None and any(due.values()):
                ema.standing_statistics()  # batch-norm statistics of the averaged weights
            if due["eval"]:
                scores, _ = sample_metrics(
                    cfg.dataset, eval_data, draw(sampler, eval_samples, opts.seed),
                    plan, evals.weights, evals.inception_graph,
                )
                metrics.update(scores)
            try:
                if due["log"] or due["eval"]:
                    now = time.perf_counter()
                    last = {"step": s, **metrics, "steps_per_sec": (s - since_step) / max(now - since, 1e-9)}
                    since, since_step = now, s
                    metrics_log.write(last)
                    for name, value in last.items():
                        if name != "step":
                            tf.summary.scalar(name, value, step=s)
                    shown.update(last)
                    del shown["step"]
                    bar.set_postfix({k: f"{v:.4g}" for k, v in shown.items()})
                if due["sample"]:
                    image = preview(sampler(sample_noise, training=False).numpy(), real_preview)
                    atomic_write(run.sample_path(s), png_bytes(image))
                    pixels = np.asarray(image)
                    tf.summary.image("samples", pixels.reshape(1, *pixels.shape[:2], -1), step=s)
            except OSError as err:
                raise GantrainError(
                    f"cannot write into {run.root} ({err.strerror or err}); the last checkpoint "
                    f"(step {ckpts.latest_step()}) is kept"
                ) from None
            if due["checkpoint"]:
                ckpts.save(s)
            if due["eval"] and best is not None and best.offer(s, metrics[evals.select]):
                log.info("best %s so far at step %d: %.4g", evals.select, s, metrics[evals.select])
    writer.flush()
    if best is not None and best.value is not None:
        last[f"best_{evals.select}"] = best.value
    if stopping:
        last["stopped_by"] = signal.Signals(stop.signal).name
        log.info("stopped by %s at step %d; continue with resume=%s", last["stopped_by"], s, run.root)
    return last


def _adam(lr: LearningRate, beta1: float, beta2: float, precision: Precision) -> keras.optimizers.Optimizer:
    optimizer = keras.optimizers.Adam(lr, beta_1=beta1, beta_2=beta2)
    if precision is Precision.mixed_float16:
        # float16 gradients underflow without it; dynamic: the scale adapts and steps with
        # overflowing gradients are skipped.
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
    return optimizer
