"""``gantrain-generate``: a trained run's samples written to a folder.

    gantrain-generate run_dir=<dir> out=<folder> [key=value ...]   (gantrain-generate --help lists the keys)

Restores the generator (the moving average of G when the run kept one) from a checkpoint and writes
``num_samples`` samples into ``out``: numbered PNGs (``000000.png`` ...; a conditional run's in one
subfolder per class, ``<out>/<class>/``), or one ``samples.npz`` (``x``: uint8 images or float32
points; ``y``: the classes of a conditional run). A conditional run draws its samples for each of
``classes`` in turn (default: every class). ``interpolate=n`` writes ``interpolation.png`` instead:
rows of n images along the great circle (slerp) between two latents, one row per sample, or one per
class with the same two latents. With the run's seed and no ``classes``, the samples are those
``gantrain-eval`` measures. ``sampling=drs|mh`` lets the run's D choose them, ``sampling=dot`` move
them (unconditional runs).

Usage: ``generate("outputs/run", "outputs/run/generated", num_samples=100)`` -> a summary dict.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from gantrain.commands.keys import check_target, keys_help, run_command
from gantrain.config import MetricOptions, check_metric_options
from gantrain.errors import ConfigError, naming
from gantrain.run.directory import new_folders, temporary_path

FORMATS = ("png", "npz")


@dataclass
class GenerateCommand:
    """The keys of ``gantrain-generate``."""

    run_dir: str = field(default="???", metadata={"help": "the run directory to draw from (required)"})
    out: Optional[str] = field(default=None, metadata={"help": "the folder to write into (required; new or empty)"})
    checkpoint: str = field(default="latest", metadata={"help": "latest, best (kept by eval.select during training) or a step number"})
    num_samples: int = field(default=64, metadata={"help": "samples to write (split evenly over classes; rows with interpolate)"})
    format: str = field(default="png", metadata={"help": "png (numbered files) or npz (one samples.npz)"})
    classes: Optional[list[int]] = field(default=None, metadata={"help": "conditional runs: the classes to draw, e.g. [3,7]; default all"})
    seed: Optional[int] = field(default=None, metadata={"help": "seed of the noise; default the run's train.seed (gantrain-eval's samples)"})
    sampling: str = field(default="none", metadata={"help": "none, drs or mh: the run's D chooses the samples; dot: it moves them (gantrain-eval --help)"})
    drs_percentile: Optional[float] = field(default=95.0, metadata={"help": "drs: gamma's percentile; null: exact rejection sampling"})
    mh_steps: int = field(default=100, metadata={"help": "mh: proposals per chain"})
    dot_steps: int = field(default=100, metadata={"help": "dot: Adam updates of each sample's noise"})
    dot_lr: float = field(default=0.01, metadata={"help": "dot: their step size"})
    dot_k: Optional[float] = field(default=None, metadata={"help": "dot: the Lipschitz constant dividing D's logit; null: estimated"})
    interpolate: Optional[int] = field(default=None, metadata={"help": "n >= 2: write interpolation.png, n images per row along a slerp"})
    overwrite: bool = field(default=False, metadata={"help": "write into a folder that is not empty (files of the same names are replaced)"})
    batch_size: int = field(default=500, metadata={"help": "samples per generator call"})


def generate(
    run_dir: str | Path,
    out: str | Path | None,
    checkpoint: str | int = "latest",
    num_samples: int = 64,
    format: str = "png",
    classes: list[int] | None = None,
    seed: int | None = None,
    sampling: str = "none",
    drs_percentile: float | None = 95.0,
    mh_steps: int = 100,
    dot_steps: int = 100,
    dot_lr: float = 0.01,
    dot_k: float | None = None,
    interpolate: int | None = None,
    overwrite: bool = False,
    batch_size: int = 500,
) -> dict:
    """Write samples of the run's generator at ``checkpoint`` into ``out`` (the keys are those of
    :class:`GenerateCommand`); returns what was written. Every check runs before ``out`` is touched."""
    from gantrain.data import DATASETS
    from gantrain.evaluation.measure import (
        as_exported,
        check_driven_sampling,
        checkpoint_path,
        evaluation_labels,
        restore_models,
        run_samples,
        saved_run,
    )
    from gantrain.run.checkpoints import step_of

    if out is None:
        raise ConfigError("out", "required: gantrain-generate run_dir=<run directory> out=<folder>")
    run, cfg = saved_run(run_dir)
    path = checkpoint_path(run, checkpoint)
    for key, value in (("num_samples", num_samples), ("batch_size", batch_size)):
        if value < 1:
            raise ConfigError(key, f"must be >= 1, got {value}")
    if format not in FORMATS:
        raise ConfigError("format", f"unknown format '{format}'; known: {', '.join(FORMATS)}")
    if interpolate is not None and interpolate < 2:
        raise ConfigError("interpolate", f"needs at least 2 points (the two ends), got {interpolate}")
    driving = MetricOptions(sampling=sampling, drs_percentile=drs_percentile, mh_steps=mh_steps, dot_steps=dot_steps,
                            dot_lr=dot_lr, dot_k=dot_k)
    check_metric_options(driving)
    if sampling != "none":
        check_driven_sampling(cfg, "sampling")
        if interpolate is not None:
            raise ConfigError("interpolate", "draws a path through the noise; it does not combine with sampling")
    dataset = DATASETS.build(cfg.dataset)
    drawn_classes = chosen_classes(classes, dataset.classes if cfg.model.get("conditional") else 0)
    if not dataset.is_image and (format == "png" or interpolate is not None):
        raise ConfigError("format" if interpolate is None else "interpolate",
                          f"{cfg.dataset.name} samples are 2-D points, not images: use format=npz")
    folder = Path(out).expanduser()
    check_target(folder, "out", overwrite, folder=True)

    generator, discriminator = restore_models(cfg, dataset, path)
    seed = int(cfg.train.seed) if seed is None else seed
    summary: dict = {"out": str(folder), "step": step_of(path), "seed": seed}
    if interpolate is not None:
        image = interpolation_strip(generator, interpolate, num_samples, drawn_classes, seed)
        write_into(folder, lambda staging: image.save(staging / "interpolation.png"))
        return {**summary, "written": str(folder / "interpolation.png")}
    labels = None  # the requested classes in turn, as gantrain-eval draws every class in turn
    if drawn_classes is not None:
        labels = np.asarray(drawn_classes, np.int32)[evaluation_labels(num_samples, len(drawn_classes))]
    samples, extra = run_samples(cfg, generator, discriminator, path, driving, num_samples, seed, batch_size, labels)
    summary.update(extra)
    samples = as_exported(samples)
    if format == "npz":
        arrays = {"x": samples} if labels is None else {"x": samples, "y": labels}
        write_into(folder, lambda staging: np.savez(staging / "samples.npz", **arrays))
        return {**summary, "written": num_samples, "file": str(folder / "samples.npz")}
    write_into(folder, lambda staging: write_pngs(staging, samples, labels))
    counts = {} if labels is None else {str(k): int((labels == k).sum()) for k in drawn_classes}
    return {**summary, "written": num_samples, **({"per_class": counts} if counts else {})}


def chosen_classes(classes: list[int] | None, num_classes: int) -> list[int] | None:
    """The classes to draw for a conditional run (``num_classes`` > 0): ``classes``, checked, or all."""
    if not num_classes:
        if classes is not None:
            raise ConfigError("classes", "this run is unconditional (model.conditional=false): it has no classes to choose")
        return None
    if classes is None:
        return list(range(num_classes))
    if not classes:
        raise ConfigError("classes", "needs at least one class")
    outside = [k for k in classes if not 0 <= k < num_classes]
    if outside:
        raise ConfigError("classes", f"{outside[0]} is not a class of this run (0 to {num_classes - 1})")
    return list(dict.fromkeys(classes))


def write_into(folder: Path, write: Callable[[Path], None]) -> None:
    """``write(staging)`` into a new hidden folder beside ``folder``, then its files moved into
    ``folder`` (the whole folder renamed when ``folder`` is new): a write that fails (a full disk)
    leaves ``folder`` as it was and nothing half-written behind."""
    staging = temporary_path(folder)
    with new_folders(staging.parent):
        staging.mkdir()
        try:
            write(staging)
            if not folder.exists():
                os.replace(staging, folder)
                return
            for file in sorted(p for p in staging.rglob("*") if p.is_file()):
                target = folder / file.relative_to(staging)
                target.parent.mkdir(exist_ok=True)
                os.replace(file, target)
        except OSError as err:
            raise naming(err, folder) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)


def write_pngs(folder: Path, images: np.ndarray, labels: np.ndarray | None) -> None:
    """``000000.png`` ... in ``folder``, or in ``folder/<class>/`` numbered within each class."""
    from PIL import Image

    counters: dict[int | None, int] = {}
    for i, image in enumerate(images):
        label = None if labels is None else int(labels[i])
        where = folder if label is None else folder / str(label)
        where.mkdir(exist_ok=True)
        number = counters.get(label, 0)
        counters[label] = number + 1
        Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(where / f"{number:06d}.png")


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at fractions ``t`` (n,) along the great circle from z0 to z1 (each (z_dim,)), with
    their norms interpolated linearly; a straight line where the two are (anti)parallel."""
    u0, u1 = z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1)
    omega = np.arccos(np.clip(np.dot(u0, u1), -1.0, 1.0))
    t = t[:, None]
    if np.sin(omega) < 1e-6:
        return (1 - t) * z0 + t * z1
    unit = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    return unit * ((1 - t) * np.linalg.norm(z0) + t * np.linalg.norm(z1))


def interpolation_strip(generator, n: int, rows: int, classes: list[int] | None, seed: int):
    """A grid with one slerp of ``n`` points per row: ``rows`` rows, each between its own two
    latents; or, conditional, one row per class between the same two latents."""
    from gantrain.models.conditioning import generate as call
    from gantrain.models.conditioning import noise_size
    from gantrain.pictures import image_grid

    rng = np.random.default_rng(seed)
    count = rows if classes is None else 1
    ends = rng.standard_normal((count, 2, noise_size(generator))).astype(np.float32)
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    paths = np.stack([slerp(a, b, t) for a, b in ends]).astype(np.float32)  # (count, n, z_dim)
    if classes is None:
        z, labels = paths.reshape(-1, paths.shape[-1]), None
    else:
        z = np.tile(paths[0], (len(classes), 1))
        labels = np.repeat(np.asarray(classes, np.int32), n)
    return image_grid(call(generator, z, labels).numpy(), rows=len(z) // n)


def usage() -> str:
    return (
        "Usage: gantrain-generate run_dir=<run directory> out=<folder> [key=value ...]\n\n"
        + __doc__.split("\n\n")[2].replace("``", "") + "\n\nKeys:\n" + keys_help(GenerateCommand)
        + "\n\nA summary of what was written is printed as one JSON line."
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``key=value`` arguments, one-line errors, exit 2 on bad input."""
    result = run_command("gantrain-generate", GenerateCommand, generate, usage, argv)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
