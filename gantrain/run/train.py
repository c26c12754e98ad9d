"""``train(cfg, run_dir)``: check the config, build the GAN, open (or resume) the run, loop.

Everything that can reject the config (values, data files, model/data pairing) runs before the
run directory is written to, so a rejected command leaves no trace in it.

Usage: ``metrics = train(cfg, "outputs/run")`` -> the last logged metrics.
"""

from __future__ import annotations

import copy
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import tensorflow as tf
from omegaconf import DictConfig, OmegaConf

from gantrain.config import Precision, TrainConfig, check_values
from gantrain.data import Dataset, load
from gantrain.errors import ConfigError
from gantrain.evaluation.draw import check_driven_sampling
from gantrain.evaluation.options import EvalConfig
from gantrain.evaluation.plan import Plan, check_sample_count, default_num_samples, evaluation_plan
from gantrain.models import MODELS
from gantrain.run.checkpoints import Checkpoints
from gantrain.run.directory import MetricsLog, RunDir, RunLock
from gantrain.run.duties import (
    Checkpointing,
    DivergenceGuard,
    Duty,
    Evaluation,
    FiniteWeights,
    Log,
    NotStepTime,
    Preview,
    Progress,
    RolledBack,
    StandingStatistics,
)
from gantrain.run.environment import cpu_has_bfloat16, describe
from gantrain.run.interrupts import GracefulStop
from gantrain.run.loggers import Loggers, Opening, check_loggers
from gantrain.run.strategies import STRATEGIES, devices
from gantrain.training.gan import GAN, build_gan
from gantrain.training.step import RealBatches, make_train_step

log = logging.getLogger(__name__)
logging.getLogger("absl").setLevel(logging.WARNING)  # TF's per-checkpoint chatter


def train(
    cfg: DictConfig,
    run_dir: str | Path,
    resume: bool = False,
    overrides: list[str] | None = None,
    opened: Callable[[], None] | None = None,
) -> dict[str, float | str]:
    """Train a new run in ``run_dir``, or continue the one there (``resume``); ``opened`` is called
    once the run directory is written to (every check has passed).

    Returns the last logged metrics; ``stopped_by`` names the signal if one ended the run early.
    """
    # -- Check: everything that can refuse the command, before anything is written ---------------
    checked = check(cfg)
    opts, dataset, strategy = checked.opts, checked.dataset, checked.strategy
    run = RunDir(run_dir)
    if not strategy.extended.should_checkpoint:
        # Every worker takes part in saving (a collective), but only the chief writes the run
        # directory; each other worker keeps its own copy inside it.
        run = RunDir(run.root / "workers" / str(strategy.cluster_resolver.task_id))

    # -- Build: seeded initialisation, deterministic kernels, every training draw from gan.rng ----
    tf.config.experimental.enable_op_determinism()
    gan = build_gan(cfg, dataset.shape, strategy, dataset.classes, opts)
    data, labels, streamed = real_data(dataset, gan, opts, run, resume)
    train_step = make_train_step(gan, data, opts, labels)

    # -- Open the run: a new one, or the one to continue ------------------------------------------
    with RunLock(run.root):  # before the first write into the run directory
        ckpts = Checkpoints(run.checkpoints, keep=opts.keep_checkpoints, **gan.checkpointed(), **streamed)
        start, cfg = open_run(run, cfg, gan, ckpts, resume, overrides)
        if opened is not None:
            opened()
        if start >= opts.steps:
            log.info("already at step %d of train.steps=%d: nothing to do", start, opts.steps)
            return {"step": start}
        environment = describe(devices(strategy))
        run.record_environment({"step": start, **environment})

        # -- Loop ---------------------------------------------------------------------------------
        real_points = dataset.array()[: opts.preview_samples(dataset.shape)] if not dataset.is_image else None
        evaluation = Evaluation(
            checked.evals, cfg.dataset, dataset, checked.plan, checked.eval_samples, opts.seed, gan, run, ckpts
        )
        del dataset, checked
        chief = strategy.extended.should_checkpoint
        loggers = Loggers(chosen_loggers(cfg, run), Opening(run, cfg, environment, start, resume, chief))
        with loggers, GracefulStop() as stop, Progress(opts.steps, start) as progress:
            logger = Log(opts.log_every, run, ckpts, progress, start, evaluation, loggers)
            preview = Preview(opts.sample_every, gan, run, ckpts, real_points, loggers)
            duties = in_order(
                gan, opts, ckpts, progress, logger, preview, evaluation, Checkpointing(opts.checkpoint_every, ckpts)
            )
            done = loop(gan, train_step, opts, start, stop, duties)
        return ending(logger.last, evaluation, stop, done, run)


def real_data(dataset: Dataset, gan: GAN, opts: TrainConfig, run: RunDir, resume: bool):
    """(what the step draws its real batches from: the dataset in memory or a stream's batches,
    the labels of a conditional GAN, the stream's position to checkpoint)."""
    labels = None
    if gan.num_classes:
        assert dataset.y is not None  # Dataset.conditional_classes refused a dataset without labels
        labels = tf.convert_to_tensor(dataset.y.astype("int64"))
    if dataset.stream is None:
        return tf.convert_to_tensor(dataset.x), labels, {}  # the one in-memory copy the step samples from
    # Read from disk as the step trains; its position is checkpointed.
    if not resume:
        run.check_new()  # the last check that can refuse the command: the cache is written after it
    reals = opts.n_critic + int(gan.objective.relativistic)  # real batches per step
    batches = dataset.stream.prepare().batches(reals * opts.batch_size, opts.seed)
    data = RealBatches(iter(batches), dataset.size)
    return data, labels, {"data_iterator": data.iterator}


def chosen_loggers(cfg: DictConfig, run: RunDir) -> DictConfig | None:
    """The config's ``logger`` node. A run saved before loggers were a config group has none, and
    logged to TensorBoard (its tb/ folder): it goes on doing so (a run started with ``logger=[]``
    has no tb/)."""
    if "logger" not in cfg and run.tb.is_dir():
        return OmegaConf.create({"tensorboard": {}})
    return cfg.get("logger")


def ending(
    last: dict[str, float], evaluation: Evaluation, stop: GracefulStop, done: int, run: RunDir
) -> dict[str, float | str]:
    """What :func:`train` returns: the last logged metrics, the best evaluation, the signal that
    stopped the run early (its name)."""
    result: dict[str, float | str] = dict(last)
    if evaluation.best is not None and evaluation.best.value is not None:
        result[f"best_{evaluation.best.metric}"] = evaluation.best.value
    if stop.requested:
        assert stop.signal is not None  # set with requested
        result["stopped_by"] = signal.Signals(stop.signal).name
        log.info("stopped by %s at step %d; continue with resume=%s", result["stopped_by"], done, run.root)
    return result


@dataclass
class Checked:
    """What :func:`check` established about a config."""

    opts: TrainConfig
    evals: EvalConfig
    dataset: Dataset
    plan: Plan  # how evaluations measure samples
    eval_samples: int
    strategy: tf.distribute.Strategy


def check(cfg: DictConfig) -> Checked:
    """Every check that needs no model: values, the data, what evaluations need, the strategy.
    (The loss, auxiliary and model checks run when :func:`build_gan` builds them, also before any
    write.)"""
    opts, evals = check_values(cfg)
    check_loggers(cfg.get("logger"))
    dataset = load(cfg.dataset)
    conditional = bool(cfg.model.get("conditional"))
    if conditional:
        dataset.conditional_classes()
    plan = evaluation_plan(dataset.name, evals.features, conditional=conditional)
    if evals.select is not None and evals.select not in plan.metrics:
        raise ConfigError(
            "eval.select", f"'{evals.select}' is not measured here; choose from {', '.join(plan.metrics)}"
        )
    if evals.every is not None and evals.sampling != "none":
        check_driven_sampling(cfg, "eval.sampling")
    eval_samples = evals.num_samples or default_num_samples(dataset.name)
    if evals.every is not None:
        from gantrain.evaluation.features import check_available

        check_available(cfg.dataset, plan.extractor, evals.weights, evals.inception_graph)
        check_sample_count(plan, eval_samples, dataset.classes, "eval.num_samples")
    if dataset.size < opts.batch_size:
        log.warning(
            "train.batch_size=%d is larger than the dataset (%d examples): every batch repeats "
            "examples; use a smaller train.batch_size or more data",
            opts.batch_size,
            dataset.size,
        )
    strategy = STRATEGIES.build(cfg.strategy)  # before any other TensorFlow op: multi-worker setup
    on_cpu = "CPU" in devices(strategy)[0].upper()
    if opts.precision is Precision.mixed_bfloat16 and on_cpu and not cpu_has_bfloat16():
        log.warning(
            "train.precision=mixed_bfloat16: this CPU has no bfloat16 instructions (avx512_bf16, amx_bf16), "
            "so TensorFlow emulates them and a step is many times slower than in float32"
        )
    if opts.jit_compile and on_cpu and not MODELS.facts(cfg.model.name).xla_on_cpu:
        log.warning(
            "train.jit_compile=true on a CPU: XLA's convolutions there are several times slower than "
            'TensorFlow\'s own (docs/guides/scaling.md, "Performance"); it pays off on GPUs, and on CPUs for mlp models'
        )
    if opts.batch_size % strategy.num_replicas_in_sync:
        raise ConfigError(
            "train.batch_size", f"{opts.batch_size} does not divide over {strategy.num_replicas_in_sync} replicas"
        )
    return Checked(opts, evals, dataset, plan, eval_samples, strategy)


def open_run(
    run: RunDir, cfg: DictConfig, gan: GAN, ckpts: Checkpoints, resume: bool, overrides: list[str] | None
) -> tuple[int, DictConfig]:
    """Restore the run to continue (its metrics after the checkpoint dropped), or start a new one
    with a checkpoint at step 0. Returns the step training starts from and the config as saved
    (a new run's with its data path made absolute; ``cfg`` itself is left as it was)."""
    if resume:
        start = ckpts.restore()
        MetricsLog(run.metrics).truncate_after(start)
        run.save_config(cfg)
        log.info("resumed %s at step %d", run.root, start)
        return start, cfg
    run.check_new()
    if cfg.dataset.get("path"):
        # Saved absolute, so a resume from another working directory finds the data.
        cfg = copy.deepcopy(cfg)
        cfg.dataset.path = str(Path(cfg.dataset.path).expanduser().resolve())
    run.save_config(cfg, overrides)
    if gan.ema is not None:
        gan.ema.standing_statistics()
    ckpts.save(0)  # a crash or divergence in the first steps has a start to return to
    log.info("new run in %s", run.root)
    return 0, cfg


def in_order(
    gan: GAN,
    opts: TrainConfig,
    ckpts: Checkpoints,
    progress: Progress,
    logger: Log,
    preview: Preview,
    evaluation: Evaluation,
    checkpointing: Checkpointing,
) -> list[Duty]:
    """The duties of a call of the step, in the order they must run: the bar; the divergence guard
    before anything is logged, drawn or saved (the weights too when one of those is due); the moving
    average's batch-norm statistics before it is measured, drawn or saved; the evaluation before the
    log that writes its scores; the preview; the checkpoint."""
    reports: list[Duty] = [logger, preview, evaluation, checkpointing]
    guard = DivergenceGuard(opts, ckpts, gan.learning_rates, logger, progress)
    duties: list[Duty] = [progress, guard, FiniteWeights(reports, guard)]
    if gan.ema is not None:
        duties.append(StandingStatistics(reports, gan.ema))
    # An evaluation's time (minutes, the first time MNIST's classifier trains) is kept out of steps_per_sec.
    return [*duties, NotStepTime(evaluation, logger), logger, preview, checkpointing]


def loop(gan: GAN, train_step, opts: TrainConfig, start: int, stop: GracefulStop, duties: list[Duty]) -> int:
    """Call the step until train.steps or a stop signal; after each call, every duty that is due,
    in order (a rollback drops the rest of them). Returns the step reached."""
    done, stopping = start, False
    while done < opts.steps and not stopping:
        n = min(opts.steps_per_call, opts.steps - done)
        record = {name: float(value) for name, value in stop.call(train_step, n).items()}
        done += n
        gan.step.assign(done)
        stopping = stop.requested  # read once: a signal after this line is handled after the next call
        final = done == opts.steps or stopping
        try:
            for duty in duties:
                if duty.due(done, n, final):
                    duty(done, record)
        except RolledBack as back:
            done = back.step
    return done
