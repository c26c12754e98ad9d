"""The measuring behind ``gantrain-eval``: samples of a trained run's generator and their metrics.

Rebuilds the generator from the run's saved config, restores it from a checkpoint (``latest``,
``best`` or a step; the moving average of G when the run kept one; :mod:`gantrain.evaluation.saved_run`),
draws samples from fixed noise (or lets the run's D choose or move them; :mod:`gantrain.evaluation.draw`),
measures them with the metrics :mod:`gantrain.evaluation.plan` picks for the dataset, and writes
``<run>/eval.json`` (and the samples, with ``export``), each with the protocol card that says how
(:mod:`gantrain.evaluation.protocol`).

Usage: ``evaluate("outputs/run", num_samples=2500)`` -> the metrics dict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gantrain.errors import ConfigError
from gantrain.evaluation.draw import (
    check_driven_sampling,
    evaluation_labels,
    run_samples,
)
from gantrain.evaluation.options import MetricOptions, check_metric_options
from gantrain.evaluation.plan import Plan, check_sample_count, default_num_samples, evaluation_plan
from gantrain.evaluation.protocol import protocol_card
from gantrain.evaluation.saved_run import checkpoint_path, driven_by_raw, restore_models, saved_run, uses_average
from gantrain.evaluation.truncation import check_truncation
from gantrain.run.directory import atomic_write, check_target, npz_bytes


def evaluate(
    run_dir: str | Path,
    checkpoint: str | int = "latest",
    export: str | Path | None = None,
    batch_size: int = 500,
    overwrite: bool = False,
    truncation: float | None = None,
    **options,
) -> dict:
    """Metrics of samples of the run's generator at ``checkpoint``, its noise truncated at
    ``truncation`` (:mod:`gantrain.evaluation.truncation`; recorded in the result); ``options``: the keys of
    :class:`~gantrain.evaluation.options.MetricOptions` (``num_samples``; ``features``, ``weights``,
    ``inception_graph``: the image feature extractor; ``sampling``, ``drs_percentile``, ...:
    discriminator-driven sampling); ``export``: a .npz file for the samples; ``overwrite``: replace it."""
    measuring = MetricOptions(**options)
    run, cfg = saved_run(run_dir)
    check_counts(measuring.num_samples, batch_size)
    path = checkpoint_path(run, checkpoint)
    check_export(export, overwrite)
    conditional = bool(cfg.model.get("conditional"))
    plan = evaluation_plan(cfg.dataset.name, measuring.features, key="features", conditional=conditional)
    num_samples = measuring.num_samples or default_num_samples(cfg.dataset.name)
    check_options(cfg, measuring, truncation)

    from gantrain.data import DATASETS
    from gantrain.run.checkpoints import step_of

    dataset = DATASETS.build(cfg.dataset)
    classes = dataset.classes if conditional else 0
    check_sample_count(plan, num_samples, classes, "num_samples")
    raw = driven_by_raw(measuring)
    generator, discriminator = restore_models(cfg, dataset, path, raw)
    labels = evaluation_labels(num_samples, classes)
    samples, extra = run_samples(
        cfg, generator, discriminator, path, measuring, num_samples, int(cfg.train.seed), batch_size, labels, truncation
    )
    metrics, exported = sample_metrics(
        cfg.dataset, dataset, samples, plan, measuring.weights, measuring.inception_graph, labels
    )
    result: dict = {"step": step_of(path), "num_samples": num_samples, **metrics, **extra}
    if truncation is not None:
        result["truncation"] = truncation
    result["protocol"] = protocol_card(
        cfg.dataset,
        dataset,
        plan,
        measuring,
        num_samples=num_samples,
        seed=int(cfg.train.seed),
        step=result["step"],
        ema=uses_average(cfg, raw),
        truncation=truncation,
    )
    if export is not None:  # the card travels with the samples, as JSON text
        card = np.array(json.dumps(result["protocol"]))
        atomic_write(Path(export).expanduser(), npz_bytes(x=exported, protocol=card))
    atomic_write(run.root / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def check_options(cfg, measuring: MetricOptions, truncation: float | None) -> None:
    """The options' own ranges, then what D-driven sampling needs of the run."""
    check_metric_options(measuring)
    check_truncation(truncation, measuring.sampling)
    if measuring.sampling != "none":
        check_driven_sampling(cfg, "sampling")


def check_counts(num_samples: int | None, batch_size: int) -> None:
    if num_samples is not None and num_samples < 1:
        raise ConfigError("num_samples", f"must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")


def check_export(export: str | Path | None, overwrite: bool) -> None:
    """A .npz file that may be written (one that exists only with ``overwrite``), if any."""
    if export is None:
        return
    if Path(export).suffix != ".npz":
        raise ConfigError("export", f"must name a .npz file, got {export}")
    check_target(Path(export).expanduser(), "export", overwrite)


def sample_metrics(
    node, dataset, samples: np.ndarray, plan: Plan, weights=None, inception_graph=None, labels: np.ndarray | None = None
):
    """(metrics named by ``plan``, samples as exported: float32 points or uint8 images) for
    generator outputs (drawn for ``labels`` by a conditional G)."""
    from gantrain.evaluation.metrics import mode_metrics, sample_quality

    if dataset.centers is not None:
        points = as_exported(samples)
        # The points are their own features; the first as many real points as samples, drawn alike.
        manifold = sample_quality(dataset.head(len(points)), points)
        return {**mode_metrics(points, dataset.centers, dataset.std), **manifold}, points
    images = as_exported(samples)
    if plan.extractor == "none":
        pick = np.random.default_rng(0).choice(dataset.size, min(len(images), dataset.size), replace=False)
        real = dataset.take(pick).head()
        return {
            "pixel_mean": float(images.mean()),
            "pixel_std": float(images.std()),
            "real_pixel_mean": float(real.mean()),
            "real_pixel_std": float(real.std()),
        }, images
    from gantrain.evaluation.features import image_metrics

    conditional = labels if "class_accuracy" in plan.metrics else None
    return image_metrics(node, images, plan.extractor, weights, inception_graph, conditional), images


def as_exported(samples: np.ndarray) -> np.ndarray:
    """G's outputs as files hold them: uint8 images (N, H, W, C), or float32 points (N, 2)."""
    if samples.ndim == 4:
        return pixels(samples).numpy()
    return samples.astype(np.float32)


def pixels(images):
    """Images in [-1, 1] as uint8 pixels (N, H, W, C), rounded half to even: in TensorFlow ops, so an
    exported SavedModel gives the pixels gantrain-generate writes."""
    import tensorflow as tf

    return tf.cast(tf.clip_by_value(tf.round((images + 1.0) * 127.5), 0.0, 255.0), tf.uint8)
