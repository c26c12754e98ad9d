"""The periodic duties of the training loop, each a small object that knows its period, its files
and its error message (the callback idea of Lightning and Keras, without ``fit()``).

- :class:`Progress`: the progress bar, showing the latest losses from the first step on.
- :class:`Log`: ``metrics.jsonl`` and TensorBoard scalars, every ``train.log_every`` steps and at
  every evaluation.
- :class:`Preview`: ``samples/step_NNNNNN.png`` from the fixed noise, and the same image in
  TensorBoard, every ``train.sample_every`` steps.
- :class:`Evaluation`: ``gantrain-eval``'s metrics every ``eval.every`` steps, and the best
  checkpoint by ``eval.select``.
- :class:`Checkpointing`: the rolling checkpoints, every ``train.checkpoint_every`` steps.
- :class:`DivergenceGuard`: a non-finite loss or weight stops the run, or rolls it back to the last
  good checkpoint with lower learning rates (``train.nan_policy``).

A duty is due when the last call of the step passed a multiple of its period, and at the last step.

Usage: ``if log.due(done, n, final): record = log(done, metrics)``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
import tensorflow as tf
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gantrain.config import NanPolicy, TrainConfig
from gantrain.data import Dataset
from gantrain.errors import GantrainError
from gantrain.evaluation.draw import draw, driven_draw, evaluation_labels, held_out_examples
from gantrain.evaluation.measure import sample_metrics
from gantrain.evaluation.options import EvalConfig
from gantrain.evaluation.plan import Plan
from gantrain.evaluation.rejection import CALIBRATED
from gantrain.models.conditioning import generate
from gantrain.pictures import png_bytes, preview
from gantrain.run.checkpoints import BestCheckpoint, Checkpoints
from gantrain.run.directory import MetricsLog, RunDir, atomic_write
from gantrain.training.schedules import LearningRate

log = logging.getLogger(__name__)


class Duty:
    every: int | None = None

    def due(self, done: int, n: int, final: bool) -> bool:
        """A multiple of the period was passed by the call that took the run from done - n to done."""
        return self.every is not None and (done // self.every > (done - n) // self.every or final)


def _write_error(run: RunDir, ckpts: Checkpoints, err: OSError) -> GantrainError:
    return GantrainError(
        f"cannot write into {run.root} ({err.strerror or err}); the last checkpoint (step {ckpts.latest_step()}) is kept"
    )


class Progress:
    """The tqdm bar; log lines print above it instead of through it."""

    def __init__(self, steps: int, start: int):
        self.bar = tqdm(total=steps, initial=start, unit="step", desc="train")
        self.redirect = logging_redirect_tqdm()
        self.shown: dict[str, float] = {}

    def __enter__(self) -> "Progress":
        self.redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.redirect.__exit__(*exc)
        self.bar.close()

    def advance(self, n: int, numbers: dict[str, float], refresh: bool = False) -> None:
        """``n`` more steps; ``numbers`` join what the bar shows (losses every call, rates and
        evaluations as they are logged)."""
        self.show(numbers, refresh)
        self.bar.update(n)

    def show(self, numbers: dict[str, float], refresh: bool = True) -> None:
        self.shown.update({k: v for k, v in numbers.items() if k != "step"})
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in self.shown.items()}, refresh=refresh)

    def reset(self, done: int) -> None:
        self.bar.n = done
        self.bar.refresh()


class Log(Duty):
    """One JSON line per log step in metrics.jsonl, the same numbers in TensorBoard and the bar."""

    def __init__(self, every: int, run: RunDir, ckpts: Checkpoints, progress: Progress, start: int):
        self.every, self.run, self.ckpts, self.progress = every, run, ckpts, progress
        self.file = MetricsLog(run.metrics)
        self.restart(start)

    def restart(self, done: int) -> None:
        """Measure steps per second from ``done`` on (a start, a resume or a rollback)."""
        self.since, self.since_step = time.perf_counter(), done

    def __call__(self, done: int, metrics: dict[str, float]) -> dict[str, float]:
        now = time.perf_counter()
        record = {"step": done, **metrics, "steps_per_sec": (done - self.since_step) / max(now - self.since, 1e-9)}
        self.restart(done)
        try:
            self.file.write(record)
        except OSError as err:
            raise _write_error(self.run, self.ckpts, err) from None
        for name, value in record.items():
            if name != "step":
                tf.summary.scalar(name, value, step=done)
        self.progress.show(record)
        return record


class Preview(Duty):
    """The sampler's images of the fixed noise as a grid (or 2-D points over real ones); a
    conditional run's grid has one row per class."""

    def __init__(self, every: int, run: RunDir, ckpts: Checkpoints, real_points: np.ndarray | None, classes: int = 0):
        self.every, self.run, self.ckpts, self.real_points, self.classes = every, run, ckpts, real_points, classes

    def __call__(self, done: int, sampler, noise: tf.Variable, labels: tf.Tensor | None = None) -> None:
        image = preview(generate(sampler, noise, labels).numpy(), self.real_points, self.classes or None)
        try:
            atomic_write(self.run.sample_path(done), png_bytes(image))
        except OSError as err:
            raise _write_error(self.run, self.ckpts, err) from None
        pixels = np.asarray(image)
        tf.summary.image("samples", pixels.reshape(1, *pixels.shape[:2], -1), step=done)


class Evaluation(Duty):
    """``gantrain-eval``'s metrics of the sampler at this step (the same evaluation noise, so the
    numbers agree), and the best checkpoint so far by ``eval.select``."""

    def __init__(self, evals: EvalConfig, node, dataset: Dataset, plan: Plan, num_samples: int, seed: int,
                 run: RunDir, ckpts: Checkpoints, classes: int = 0):
        from gantrain.evaluation.plan import higher_is_better

        self.every, self.evals, self.node, self.plan = evals.every, evals, node, plan
        self.labels = evaluation_labels(num_samples, classes)
        self.num_samples, self.seed = num_samples, seed
        # What evaluations need of the data: mixture centres, or a few real images for pixel statistics.
        self.data = dataclasses.replace(dataset, x=dataset.head(num_samples), stream=None)
        # DRS and MH calibrate D on real examples training does not see.
        self.held_out = held_out_examples(node) if evals.sampling in CALIBRATED else None
        self.best = None
        if evals.select is not None:
            self.best = BestCheckpoint(run.checkpoints / "best", ckpts.checkpoint, evals.select,
                                       higher_is_better(evals.select))

    def __call__(self, done: int, sampler, discriminator) -> dict[str, float]:
        extra = {}
        if self.evals.sampling == "none":
            samples = draw(sampler, self.num_samples, self.seed, labels=self.labels)
        else:
            samples, extra = driven_draw(sampler, discriminator, self.held_out, self.evals, self.num_samples, self.seed)
        scores, _ = sample_metrics(self.node, self.data, samples, self.plan, self.evals.weights,
                                   self.evals.inception_graph, self.labels)
        scores.update(extra)
        if self.best is not None and self.best.offer(done, scores[self.evals.select]):
            log.info("best %s so far at step %d: %.4g", self.evals.select, done, scores[self.evals.select])
        return scores


class Checkpointing(Duty):
    def __init__(self, every: int, ckpts: Checkpoints):
        self.every, self.ckpts = every, ckpts

    def __call__(self, done: int) -> None:
        self.ckpts.save(done)


class DivergenceGuard:
    """Losses are checked after every call; weights before anything is logged, drawn or saved from
    them, so bad weights never reach a checkpoint."""

    def __init__(self, opts: TrainConfig, ckpts: Checkpoints, learning_rates: dict[str, LearningRate], log_: Log):
        self.opts, self.ckpts, self.learning_rates, self.log = opts, ckpts, learning_rates, log_
        self.rollbacks = 0

    def problem(self, metrics: dict[str, float], done: int, reporting: bool) -> str | None:
        """What is non-finite at ``done`` (weights only when ``reporting``), or None."""
        bad = [name for name, value in metrics.items() if not math.isfinite(value)]
        if not bad and reporting and not self.ckpts.weights_finite():
            bad = ["weights"]
        return f"non-finite {', '.join(bad)} at step {done}" if bad else None

    def recover(self, problem: str) -> int:
        """Stop with one line, or roll back (train.nan_policy=rollback): returns the step restored."""
        opts = self.opts
        if opts.nan_policy is NanPolicy.stop or self.rollbacks == opts.max_rollbacks:
            raise GantrainError(
                f"training diverged: {problem}; the last good checkpoint (step {self.ckpts.latest_step()}) is kept. "
                "Lower train.g_lr / train.d_lr, or set train.nan_policy=rollback"
            )
        self.rollbacks += 1
        # Lowered from the rates the run has now, not the checkpoint's: a second rollback to the same
        # checkpoint would otherwise restore its rates and repeat the first one exactly.
        lowered = {name: rate.scale * opts.rollback_lr_factor for name, rate in self.learning_rates.items()}
        done = self.ckpts.restore()
        for name, rate in self.learning_rates.items():
            rate.scale.assign(lowered[name])
        self.log.file.truncate_after(done)
        self.log.restart(done)
        log.warning("%s: rolled back to step %d with learning rates x%g (rollback %d of %d)",
                    problem, done, float(lowered["g"]), self.rollbacks, opts.max_rollbacks)
        return done
