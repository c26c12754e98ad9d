"""The measuring behind ``gantrain-eval``: samples of a trained run's generator and their metrics.

Rebuilds the generator from the run's saved config, restores it from a checkpoint (``latest``,
``best`` or a step; the moving average of G when the run kept one), draws samples from fixed noise
(or lets the run's D choose or move them), measures them with the metrics :mod:`gantrain.evaluation.plan`
picks for the dataset, and writes ``<run>/eval.json`` (and the samples, with ``export``).

Usage: ``evaluate("outputs/run", num_samples=2500)`` -> the metrics dict.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gantrain.commands.keys import check_target
from gantrain.config import MetricOptions, check_metric_options
from gantrain.errors import ConfigError
from gantrain.evaluation.plan import (
    Plan,
    default_num_samples,
    evaluation_plan,
)
from gantrain.evaluation.rejection import CALIBRATED
from gantrain.run.directory import RunDir, atomic_write, npz_bytes


def evaluate(
    run_dir: str | Path,
    num_samples: int | None = None,
    checkpoint: str | int = "latest",
    export: str | Path | None = None,
    batch_size: int = 500,
    features: str = "auto",
    weights: str | None = None,
    inception_graph: str | None = None,
    sampling: str = "none",
    drs_percentile: float | None = 95.0,
    mh_steps: int = 100,
    dot_steps: int = 100,
    dot_lr: float = 0.01,
    dot_k: float | None = None,
    overwrite: bool = False,
) -> dict:
    """Metrics of ``num_samples`` samples of the run's generator at ``checkpoint``; ``features``,
    ``weights``, ``inception_graph``: the image feature extractor (:mod:`gantrain.evaluation.features`);
    ``sampling``, ``drs_percentile``, ``mh_steps``, ``dot_steps``, ``dot_lr``, ``dot_k``: discriminator-driven
    sampling; ``overwrite``: replace an existing ``export`` file."""
    run, cfg = saved_run(run_dir)
    if num_samples is not None and num_samples < 1:
        raise ConfigError("num_samples", f"must be >= 1, got {num_samples}")
    if batch_size < 1:
        raise ConfigError("batch_size", f"must be >= 1, got {batch_size}")
    path = checkpoint_path(run, checkpoint)
    if export is not None and Path(export).suffix != ".npz":
        raise ConfigError("export", f"must name a .npz file, got {export}")
    if export is not None:
        check_target(Path(export).expanduser(), "export", overwrite)
    conditional = bool(cfg.model.get("conditional"))
    plan = evaluation_plan(cfg.dataset.name, features, key="features", conditional=conditional)
    num_samples = num_samples or default_num_samples(cfg.dataset.name)
    driving = MetricOptions(sampling=sampling, drs_percentile=drs_percentile, mh_steps=mh_steps, dot_steps=dot_steps,
                            dot_lr=dot_lr, dot_k=dot_k)
    check_metric_options(driving)
    if sampling != "none":
        check_driven_sampling(cfg, "sampling")

    from gantrain.data import DATASETS
    from gantrain.run.checkpoints import step_of

    dataset = DATASETS.build(cfg.dataset)
    generator, discriminator = restore_models(cfg, dataset, path)
    seed = int(cfg.train.seed)
    labels = evaluation_labels(num_samples, dataset.classes if conditional else 0)
    samples, extra = run_samples(cfg, generator, discriminator, path, driving, num_samples, seed, batch_size, labels)
    step = step_of(path)
    metrics, exported = sample_metrics(cfg.dataset, dataset, samples, plan, weights, inception_graph, labels)
    result: dict = {"step": step, "num_samples": num_samples, **metrics, **extra}
    if export is not None:
        atomic_write(Path(export).expanduser(), npz_bytes(x=exported))
    atomic_write(run.root / "eval.json", json.dumps(result, indent=2) + "\n")
    return result


def saved_run(run_dir: str | Path):
    """(the run directory, its saved config), or a ConfigError if ``run_dir`` holds no run."""
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise ConfigError("run_dir", f"{run.root} is not a gantrain run (no .hydra/config.yaml)")
    return run, run.saved_config()


def restore_models(cfg, dataset, path: str):
    """(G, D) of the run ``cfg`` on ``dataset``, G restored from the checkpoint ``path``: the moving
    average of G when the run kept one, since that is what samples and evaluation use."""
    import tensorflow as tf

    from gantrain.models import build_models

    classes = dataset.classes if cfg.model.get("conditional") else 0
    generator, discriminator = build_models(cfg.model, dataset.shape, cfg.train.precision, 1, classes,
                                            cfg.loss.get("aux_classifier", 0) > 0)
    name = "ema_generator" if cfg.train.get("ema") is not None else "generator"
    tf.train.Checkpoint(**{name: generator}).restore(path).expect_partial().assert_existing_objects_matched()
    return generator, discriminator


def restore_discriminator(discriminator, path: str) -> None:
    import tensorflow as tf

    try:
        tf.train.Checkpoint(discriminator=discriminator).restore(path).expect_partial().assert_existing_objects_matched()
    except AssertionError:
        raise ConfigError("sampling", f"{path} holds no discriminator to choose samples with; use sampling=none") from None


def run_samples(cfg, generator, discriminator, path: str, driving: MetricOptions, num_samples: int, seed: int,
                batch_size: int, labels: np.ndarray | None) -> tuple[np.ndarray, dict]:
    """(samples of the run's G from the noise of ``seed``, for ``labels``; or, with
    ``driving.sampling``, chosen by its D restored from ``path``, and what choosing cost)."""
    if driving.sampling == "none":
        return draw(generator, num_samples, seed, batch_size, labels), {}
    restore_discriminator(discriminator, path)
    held_out = held_out_examples(cfg.dataset) if driving.sampling in CALIBRATED else None
    return driven_draw(generator, discriminator, held_out, driving, num_samples, seed, batch_size)


def evaluation_labels(num_samples: int, classes: int) -> np.ndarray | None:
    """The classes a conditional run's evaluation samples are drawn for: every class in turn, so
    each gets an equal share (None: unconditional)."""
    return np.arange(num_samples, dtype=np.int32) % classes if classes else None


def draw(generator, num_samples: int, seed: int, batch_size: int = 500, labels: np.ndarray | None = None) -> np.ndarray:
    """``num_samples`` samples from the evaluation noise of a run with ``seed`` (the same noise in
    training-time evaluations and in ``gantrain-eval``, so their numbers agree), drawn for
    ``labels`` (N,) when G is conditional."""
    from gantrain.models.conditioning import generate, noise_size

    noise = evaluation_noise(num_samples, noise_size(generator), seed)
    return np.concatenate([
        generate(generator, noise[i : i + batch_size], None if labels is None else labels[i : i + batch_size]).numpy()
        for i in range(0, num_samples, batch_size)
    ])


def evaluation_noise(num_samples: int, size: int, seed: int):
    """The noise evaluations draw G's samples from: the same for every evaluation of a run."""
    import tensorflow as tf

    return tf.random.stateless_normal([num_samples, size], seed=[seed, 2])


def check_driven_sampling(cfg, key: str) -> None:
    """Discriminator-driven sampling needs D to judge single, unlabelled, clean samples."""
    check_single_sample_critic(cfg.train.get("pack", 1), key)
    if cfg.model.get("conditional"):
        raise ConfigError(key, "discriminator-driven sampling is for unconditional runs; this run is conditional")
    if cfg.train.get("augment"):
        # DiffAugment and ADA show D augmented reals and augmented fakes alike (every image at
        # augment_p=1, a share p of them under ADA): what D learnt is the density ratio of augmented
        # images, and its logit on a clean sample is off that distribution. Refused, not reported.
        raise ConfigError(key, f"this run's D was trained on augmented images (train.augment=[{','.join(cfg.train.augment)}]) "
                               "and does not judge clean samples; discriminator-driven sampling needs a run trained "
                               "without train.augment")


def check_single_sample_critic(pack: int, key: str) -> None:
    if pack > 1:
        raise ConfigError(key, f"this run's D judges packs of {pack} samples (train.pack), not single samples; "
                               "discriminator-driven sampling needs train.pack=1")


def held_out_examples(node) -> np.ndarray:
    """Real examples training did not see, in the model's range, to calibrate D with: the other
    split (MNIST, Fashion-MNIST, CIFAR-10, stacked MNIST), fresh points of a toy mixture; an image
    folder has no other split, so its own images (what each loader declares, ``held_out``)."""
    from gantrain.data import held_out
    from gantrain.evaluation.rejection import CALIBRATION_SAMPLES

    examples = held_out(node).head(CALIBRATION_SAMPLES)
    return examples.astype(np.float32) / 127.5 - 1.0 if examples.dtype == np.uint8 else examples.astype(np.float32)


def driven_draw(generator, discriminator, held_out: np.ndarray | None, opts: MetricOptions, num_samples: int, seed: int,
                batch_size: int = 500) -> tuple[np.ndarray, dict]:
    """``num_samples`` samples chosen (``dot``: moved) by ``discriminator`` (``opts.sampling``), with
    what choosing cost: ``acceptance`` and ``d_calls_per_sample``; ``held_out``: real examples to calibrate
    D with (DRS, MH; None for DOT, which needs none)."""
    from gantrain.evaluation.rejection import drive

    z_dim = generator.input_shape[-1]  # an unconditional G (check_driven_sampling)
    if opts.sampling == "dot":
        from gantrain.evaluation.transport import transport

        # DOT moves the very samples plain evaluation draws.
        noise = evaluation_noise(num_samples, z_dim, seed).numpy()
        moved = transport(generator, discriminator, noise, seed, opts.dot_steps, opts.dot_lr, opts.dot_k, batch_size)
        return moved.x, {"acceptance": moved.acceptance, "d_calls_per_sample": moved.calls_per_sample}

    def propose(k: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((k, z_dim), dtype=np.float32)
        return np.concatenate([generator(z[i : i + batch_size], training=False).numpy()
                               for i in range(0, k, batch_size)])

    def logits(x: np.ndarray) -> np.ndarray:
        return discriminator(x, training=False).numpy()

    sampled = drive(propose, logits, held_out, opts.sampling, num_samples, seed, opts.drs_percentile, opts.mh_steps,
                    batch_size)
    return sampled.x, {"acceptance": sampled.acceptance, "d_calls_per_sample": sampled.calls_per_sample}


def sample_metrics(node, dataset, samples: np.ndarray, plan: Plan, weights=None, inception_graph=None,
                   labels: np.ndarray | None = None):
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
            "pixel_mean": float(images.mean()), "pixel_std": float(images.std()),
            "real_pixel_mean": float(real.mean()), "real_pixel_std": float(real.std()),
        }, images
    from gantrain.evaluation.features import image_metrics

    conditional = labels if "class_accuracy" in plan.metrics else None
    return image_metrics(node, images, plan.extractor, weights, inception_graph, conditional), images


def as_exported(samples: np.ndarray) -> np.ndarray:
    """G's outputs as files hold them: uint8 images (N, H, W, C), or float32 points (N, 2)."""
    if samples.ndim == 4:
        return np.clip(np.round((samples + 1.0) * 127.5), 0, 255).astype(np.uint8)
    return samples.astype(np.float32)


def checkpoint_path(run: RunDir, checkpoint: str | int) -> str:
    """The checkpoint prefix for ``latest`` (the newest readable one, as a resume would continue
    from), ``best`` or a step, or a ConfigError listing what exists."""
    from gantrain.run.checkpoints import latest_readable, saved_checkpoints

    paths = saved_checkpoints(run.checkpoints)
    if not paths:
        raise ConfigError("run_dir", f"{run.root} has no checkpoint yet")
    if str(checkpoint) == "latest":
        return latest_readable(run.checkpoints)
    if str(checkpoint) == "best":
        best = latest_readable(run.checkpoints / "best")
        if best is None:
            raise ConfigError("checkpoint", f"{run.root} has no best checkpoint (train with eval.every and eval.select)")
        return best
    steps = {p.rsplit("-", 1)[1]: p for p in paths}
    if str(checkpoint) not in steps:
        raise ConfigError("checkpoint", f"no checkpoint at step {checkpoint}; kept: {', '.join(steps)} (or latest)")
    return steps[str(checkpoint)]
