"""The periodic duties of the training loop, each a small object that knows its period, its files
and its error message (the callback idea of Lightning and Keras, without ``fit()``). Each is built
with what it needs (the GAN, the run directory, the checkpoints) and called the same way,
``duty(done, record)``: the step reached and this call's record, the step's metrics, which the
evaluation adds its scores to before the log writes it. The loop walks them in order:

- :class:`Progress`: the progress bar, showing the latest losses from the first step on.
- :class:`DivergenceGuard`: a non-finite loss stops the run, or rolls it back to the last good
  checkpoint with lower learning rates (``train.nan_policy``); :class:`FiniteWeights` does the same
  for non-finite weights before anything is logged, drawn or saved from them.
- :class:`StandingStatistics`: batch-norm statistics of G's moving average (``train.ema``), before
  anything is drawn or saved from it.
- :class:`Evaluation`: ``gantrain-eval``'s metrics every ``eval.every`` steps, and the best
  checkpoint by ``eval.select``.
- :class:`Log`: ``metrics.jsonl`` and the same numbers to the loggers (``logger=``, TensorBoard by
  default), every ``train.log_every`` steps and at every evaluation.
- :class:`Preview`: ``samples/step_NNNNNN.png`` from the fixed noise, and the same image to the
  loggers, every ``train.sample_every`` steps.
- :class:`Checkpointing`: the rolling checkpoints, every ``train.checkpoint_every`` steps.

A duty is due when the last call of the step passed a multiple of its period, and at the last step.

Usage: ``for duty in duties: if duty.due(done, n, final): duty(done, record)``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time

import numpy as np
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from gantrain.config import NanPolicy, TrainConfig
from gantrain.data import Dataset
from gantrain.errors import GantrainError
from gantrain.evaluation.draw import (
    draw,
    driven_draw,
    evaluation_labels,
    held_out_examples,
)
from gantrain.evaluation.measure import sample_metrics
from gantrain.evaluation.options import EvalConfig
from gantrain.evaluation.plan import Plan
from gantrain.evaluation.protocol import protocol_card
from gantrain.evaluation.rejection import CALIBRATED
from gantrain.evaluation.saved_run import driven_by_raw
from gantrain.models.conditioning import generate
from gantrain.pictures import png_bytes, preview
from gantrain.run.checkpoints import BestCheckpoint, Checkpoints
from gantrain.run.directory import MetricsLog, RunDir, atomic_write
from gantrain.run.loggers import Loggers
from gantrain.training.ema import MovingAverage
from gantrain.training.gan import GAN
from gantrain.training.schedules import LearningRate

log = logging.getLogger(__name__)


class Duty:
    """Work the loop does after a call of the step when it is due; ``every``: its period (None: never)."""

    every: int | None = None

    def due(self, done: int, n: int, final: bool) -> bool:
        """A multiple of the period was passed by the call that took the run from done - n to done."""
        return self.every is not None and (done // self.every > (done - n) // self.every or final)

    def __call__(self, done: int, record: dict[str, float]) -> None:
        raise NotImplementedError


class EveryCall(Duty):
    """Due after every call of the step."""

    def due(self, done: int, n: int, final: bool) -> bool:
        return True


class BeforeReports(Duty):
    """Due whenever one of ``reports`` (the duties that log, draw or save) is: work they need done first."""

    def __init__(self, reports: list[Duty]):
        self.reports = reports

    def due(self, done: int, n: int, final: bool) -> bool:
        return any(duty.due(done, n, final) for duty in self.reports)


class RolledBack(Exception):
    """The run went back to the checkpoint at ``step``: the duties of this call are dropped."""

    def __init__(self, step: int):
        super().__init__(step)
        self.step = step


def _write_error(run: RunDir, ckpts: Checkpoints, err: OSError) -> GantrainError:
    return GantrainError(
        f"cannot write into {run.root} ({err.strerror or err}); "
        f"the last checkpoint (step {ckpts.latest_step()}) is kept"
    )


class Progress(EveryCall):
    """The tqdm bar; log lines print above it instead of through it."""

    def __init__(self, steps: int, start: int):
        self.bar = tqdm(total=steps, initial=start, unit="step", desc="train")
        self.redirect = logging_redirect_tqdm()
        self.shown: dict[str, float] = {}
        self.done = start

    def __enter__(self) -> Progress:
        self.redirect.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.redirect.__exit__(*exc)
        self.bar.close()

    def __call__(self, done: int, record: dict[str, float]) -> None:
        """The steps up to ``done``; the step's losses join what the bar shows (rates and
        evaluations join it as they are logged)."""
        self.show(record, refresh=False)
        self.bar.update(done - self.done)
        self.done = done

    def show(self, numbers: dict[str, float], refresh: bool = True) -> None:
        self.shown.update({k: v for k, v in numbers.items() if k != "step"})
        self.bar.set_postfix({k: f"{v:.4g}" for k, v in self.shown.items()}, refresh=refresh)

    def reset(self, done: int) -> None:
        self.done = self.bar.n = done
        self.bar.refresh()


class Log(Duty):
    """One JSON line per log step in metrics.jsonl, the same numbers to the loggers and the bar;
    also at every ``evaluation``, so its scores are written. ``last``: the last record written."""

    def __init__(
        self,
        every: int,
        run: RunDir,
        ckpts: Checkpoints,
        progress: Progress,
        start: int,
        evaluation: Evaluation,
        loggers: Loggers,
    ):
        self.every, self.run, self.ckpts, self.progress, self.evaluation = every, run, ckpts, progress, evaluation
        self.loggers = loggers
        self.file = MetricsLog(run.metrics)
        self.last: dict[str, float] = {}
        self.restart(start)

    def due(self, done: int, n: int, final: bool) -> bool:
        return super().due(done, n, final) or self.evaluation.due(done, n, final)

    def restart(self, done: int) -> None:
        """Measure steps per second from ``done`` on (a start, a resume or a rollback)."""
        self.since, self.since_step = time.perf_counter(), done

    def exclude(self, seconds: float) -> None:
        """Time the loop spent on something other than steps (an evaluation) does not count."""
        self.since += seconds

    def __call__(self, done: int, record: dict[str, float]) -> None:
        now = time.perf_counter()
        line = {"step": done, **record, "steps_per_sec": (done - self.since_step) / max(now - self.since, 1e-9)}
        self.restart(done)
        card = self.evaluation.last_card
        # An evaluation's row says how it was measured; the loggers and the bar take the numbers.
        row = {**line, "protocol": card} if card is not None and card["step"] == done else line
        try:
            self.file.write(row)
        except OSError as err:
            raise _write_error(self.run, self.ckpts, err) from None
        self.loggers.metrics(done, {name: value for name, value in line.items() if name != "step"})
        self.progress.show(line)
        self.last = line


class Preview(Duty):
    """The sampler's images of the fixed noise as a grid (or 2-D points over real ones); a
    conditional run's grid has one row per class."""

    def __init__(
        self, every: int, gan: GAN, run: RunDir, ckpts: Checkpoints, real_points: np.ndarray | None, loggers: Loggers
    ):
        self.every, self.gan, self.run, self.ckpts, self.real_points = every, gan, run, ckpts, real_points
        self.loggers = loggers

    def __call__(self, done: int, record: dict[str, float]) -> None:
        gan = self.gan
        image = preview(
            generate(gan.sampler, gan.sample_noise, gan.sample_labels).numpy(),
            self.real_points,
            gan.num_classes or None,
        )
        path = self.run.sample_path(done)
        try:
            atomic_write(path, png_bytes(image))
        except OSError as err:
            raise _write_error(self.run, self.ckpts, err) from None
        self.loggers.image(done, path, np.asarray(image))


class Evaluation(Duty):
    """``gantrain-eval``'s metrics of the sampler at this step (the same evaluation noise, so the
    numbers agree), added to the record; and the best checkpoint so far by ``eval.select``."""

    def __init__(
        self,
        evals: EvalConfig,
        node,
        dataset: Dataset,
        plan: Plan,
        num_samples: int,
        seed: int,
        gan: GAN,
        run: RunDir,
        ckpts: Checkpoints,
    ):
        from gantrain.evaluation.plan import higher_is_better

        self.every, self.evals, self.node, self.plan, self.gan = evals.every, evals, node, plan, gan
        self.labels = evaluation_labels(num_samples, gan.num_classes)
        self.num_samples, self.seed = num_samples, seed
        # What evaluations need of the data: mixture centres, or a few real images for pixel statistics.
        self.data = dataclasses.replace(dataset, x=dataset.head(num_samples), stream=None)
        # DRS and MH calibrate D on real examples training does not see.
        self.held_out = held_out_examples(node) if evals.sampling in CALIBRATED else None
        self.best = None
        self._card: dict | None = None
        self.last_card: dict | None = None  # of the latest evaluation, for its row in metrics.jsonl
        if evals.select is not None:
            self.best = BestCheckpoint(
                run.checkpoints / "best", ckpts.checkpoint, evals.select, higher_is_better(evals.select)
            )

    def __call__(self, done: int, record: dict[str, float]) -> None:
        extra: dict[str, float] = {}
        sampler = self.gan.generator if driven_by_raw(self.evals) else self.gan.sampler
        if self.evals.sampling == "none":
            samples = draw(sampler, self.num_samples, self.seed, labels=self.labels)
        else:
            samples, extra = driven_draw(
                sampler, self.gan.discriminator, self.held_out, self.evals, self.num_samples, self.seed
            )
        scores, _ = sample_metrics(
            self.node, self.data, samples, self.plan, self.evals.weights, self.evals.inception_graph, self.labels
        )
        scores.update(extra)
        if self.best is not None and self.best.offer(done, scores[self.evals.select]):
            log.info("best %s so far at step %d: %.4g", self.evals.select, done, scores[self.evals.select])
        record.update(scores)
        self.last_card = self.card(done)

    def card(self, done: int) -> dict:
        """The protocol card of the evaluation at step ``done`` (built once: only the step changes)."""
        card = self._card
        if card is None:
            card = self._card = protocol_card(
                self.node,
                self.data,
                self.plan,
                self.evals,
                num_samples=self.num_samples,
                seed=self.seed,
                step=done,
                ema=self.gan.ema is not None and not driven_by_raw(self.evals),
            )
        return {**card, "step": done}


class NotStepTime(Duty):
    """``duty``, its time kept out of the steps per second ``log`` reports."""

    def __init__(self, duty: Duty, log_: Log):
        self.duty, self.log = duty, log_

    def due(self, done: int, n: int, final: bool) -> bool:
        return self.duty.due(done, n, final)

    def __call__(self, done: int, record: dict[str, float]) -> None:
        started = time.perf_counter()
        self.duty(done, record)
        self.log.exclude(time.perf_counter() - started)


class Checkpointing(Duty):
    def __init__(self, every: int, ckpts: Checkpoints):
        self.every, self.ckpts = every, ckpts

    def __call__(self, done: int, record: dict[str, float]) -> None:
        self.ckpts.save(done)


class StandingStatistics(BeforeReports):
    """Batch-norm statistics of the moving average's weights, recomputed before it is evaluated,
    drawn from or saved (:meth:`gantrain.training.ema.MovingAverage.standing_statistics`)."""

    def __init__(self, reports: list[Duty], ema: MovingAverage):
        super().__init__(reports)
        self.ema = ema

    def __call__(self, done: int, record: dict[str, float]) -> None:
        self.ema.standing_statistics()


class DivergenceGuard(EveryCall):
    """Losses are checked after every call (weights by :class:`FiniteWeights`, before anything is
    logged, drawn or saved from them, so bad weights never reach a checkpoint)."""

    def __init__(
        self,
        opts: TrainConfig,
        ckpts: Checkpoints,
        learning_rates: dict[str, LearningRate],
        log_: Log,
        progress: Progress,
    ):
        self.opts, self.ckpts, self.learning_rates, self.log, self.progress = (
            opts,
            ckpts,
            learning_rates,
            log_,
            progress,
        )
        self.rollbacks = 0

    def __call__(self, done: int, record: dict[str, float]) -> None:
        bad = [name for name, value in record.items() if not math.isfinite(value)]
        if bad:
            self.recover(f"non-finite {', '.join(bad)} at step {done}")

    def recover(self, problem: str) -> None:
        """Stop with one line, or roll back (train.nan_policy=rollback) and raise :class:`RolledBack`."""
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
        log.warning(
            "%s: rolled back to step %d with learning rates x%g (rollback %d of %d)",
            problem,
            done,
            float(lowered["g"]),
            self.rollbacks,
            opts.max_rollbacks,
        )
        self.progress.reset(done)
        raise RolledBack(done)


class FiniteWeights(BeforeReports):
    """Non-finite weights are the guard's to handle, found before a report is made from them."""

    def __init__(self, reports: list[Duty], guard: DivergenceGuard):
        super().__init__(reports)
        self.guard = guard

    def __call__(self, done: int, record: dict[str, float]) -> None:
        if not self.guard.ckpts.weights_finite():
            self.guard.recover(f"non-finite weights at step {done}")
