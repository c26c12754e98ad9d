"""``gantrain-eval``: samples from a trained run's generator, their metrics, and an export.

    gantrain-eval run_dir=<dir> [key=value ...]      (gantrain-eval --help lists the keys)

Rebuilds the generator from the run's saved config, restores it from a checkpoint (``latest``,
``best`` — the one kept by ``eval.select`` during training — or a step; the moving average of G
when the run kept one), draws ``num_samples`` samples from fixed noise (or, with ``sampling=drs|mh``,
lets the run's D choose them, ``gantrain.evaluation.rejection``; with ``sampling=dot`` move them,
``gantrain.evaluation.transport``), prints one JSON line of metrics and writes
it to ``<run>/eval.json``; ``truncation=psi`` draws the noise with BigGAN's truncation trick
(:mod:`gantrain.evaluation.truncation`) and is recorded in that line. ``export`` saves the samples as ``x``:
float32 (N, 2) points, or uint8 (N, H, W, C) images.

Metrics: for mixtures of Gaussians (ring8, grid25) ``modes``, ``hq``, ``rkl`` as in PacGAN
(:func:`gantrain.evaluation.metrics.mode_metrics`); for images ``fid``, ``kid``, ``is`` against the training
data with the chosen feature extractor (:mod:`gantrain.evaluation.features`); for both ``precision``,
``recall``, ``density``, ``coverage`` (:mod:`gantrain.evaluation.metrics.prdc`) on the points or those
features; plus ``classes_hit`` and ``class_kl`` with gantrain's classifier (MNIST, Fashion-MNIST),
and for conditional runs, whose samples are drawn for every class in turn, ``class_accuracy`` and
``intra_fid``; for stacked MNIST ``modes`` (of 1000) and ``mode_kl``; with ``features=none`` the mean
and standard deviation of the pixel values of the samples and of as many training images.

Usage: ``evaluate("outputs/run", num_samples=2500)`` -> the metrics dict. Which metrics a run
gets is decided in :mod:`gantrain.evaluation.plan`.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field

from gantrain.commands.keys import run_command, usage_text
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.options import MetricOptions, NoiseOptions
from gantrain.evaluation.plan import legend


@dataclass
class EvalCommand(NoiseOptions, MetricOptions):
    """The keys of ``gantrain-eval``: which run and checkpoint, where samples go, and the
    measuring options it shares with the ``eval`` node."""

    run_dir: str = field(default="???", metadata={"help": "the run directory to evaluate (required)"})
    checkpoint: str = field(
        default="latest", metadata={"help": "latest, best (kept by eval.select during training) or a step number"}
    )
    export: str | None = field(default=None, metadata={"help": "a .npz file to save the samples in (key x)"})
    overwrite: bool = field(default=False, metadata={"help": "replace the export file if it exists"})
    batch_size: int = field(default=500, metadata={"help": "samples per generator call"})


def usage() -> str:
    """``gantrain-eval --help``: what the command does and every key with its default."""
    return usage_text(
        "gantrain-eval run_dir=<run directory> [key=value ...]",
        __doc__,
        EvalCommand,
        "The result is one JSON line on stdout (also written to <run>/eval.json); what each metric means\n"
        "is printed below it on stderr.",
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``key=value`` arguments, one-line errors, exit 2 on bad input."""
    result = run_command("gantrain-eval", EvalCommand, evaluate, usage, argv)
    if result is not None:
        print(json.dumps(result))
        print("What the numbers mean:\n" + legend(result), file=sys.stderr)


if __name__ == "__main__":
    main()
