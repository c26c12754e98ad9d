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
them (unconditional runs). ``truncation=psi`` draws the noise with BigGAN's truncation trick: every
entry beyond +-psi drawn again (the same images for the same seed).

Usage: ``generate("outputs/run", "outputs/run/generated", num_samples=100)`` -> a summary dict.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantrain.commands.keys import run_command, usage_text
from gantrain.errors import ConfigError, naming
from gantrain.evaluation.draw import chosen_classes, class_labels
from gantrain.evaluation.interpolation import check_interpolation
from gantrain.evaluation.options import NoiseOptions, SamplingOptions, check_sampling
from gantrain.run.directory import check_target, new_folders, temporary_path

if TYPE_CHECKING:
    from omegaconf import DictConfig

    from gantrain.data import Dataset

FORMATS = ("png", "npz")


@dataclass
class GenerateCommand(NoiseOptions, SamplingOptions):
    """The keys of ``gantrain-generate``: which run and checkpoint, what to draw and where, and
    the sampling and noise keys it shares with ``gantrain-eval``."""

    run_dir: str = field(default="???", metadata={"help": "the run directory to draw from (required)"})
    out: str | None = field(default=None, metadata={"help": "the folder to write into (required; new or empty)"})
    checkpoint: str = field(
        default="latest", metadata={"help": "latest, best (kept by eval.select during training) or a step number"}
    )
    num_samples: int = field(
        default=64, metadata={"help": "samples to write (split evenly over classes; rows with interpolate)"}
    )
    format: str = field(default="png", metadata={"help": "png (numbered files) or npz (one samples.npz)"})
    classes: list[int] | None = field(
        default=None, metadata={"help": "conditional runs: the classes to draw, e.g. [3,7]; default all"}
    )
    seed: int | None = field(
        default=None, metadata={"help": "seed of the noise; default the run's train.seed (gantrain-eval's samples)"}
    )
    interpolate: int | None = field(
        default=None, metadata={"help": "n >= 2: write interpolation.png, n images per row along a slerp"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "write into a folder that is not empty (files of the same names are replaced)"}
    )
    batch_size: int = field(default=500, metadata={"help": "samples per generator call"})


def generate(
    run_dir: str | Path,
    out: str | Path | None,
    checkpoint: str | int = "latest",
    num_samples: int = 64,
    format: str = "png",
    classes: list[int] | None = None,
    seed: int | None = None,
    interpolate: int | None = None,
    overwrite: bool = False,
    batch_size: int = 500,
    truncation: float | None = None,
    **sampling,
) -> dict:
    """Write samples of the run's generator at ``checkpoint`` into ``out`` (the keys are those of
    :class:`GenerateCommand`; ``sampling``: those of :class:`~gantrain.evaluation.options.SamplingOptions`);
    returns what was written. Every check runs before ``out`` is touched."""
    from gantrain.evaluation.draw import run_samples
    from gantrain.evaluation.interpolation import interpolation_strip
    from gantrain.evaluation.measure import as_exported
    from gantrain.evaluation.saved_run import driven_by_raw, restore_models
    from gantrain.run.checkpoints import step_of

    driving = SamplingOptions(**sampling)
    request = check_request(
        run_dir, out, checkpoint, num_samples, format, classes, interpolate, overwrite, batch_size, driving, truncation
    )
    generator, discriminator = restore_models(request.cfg, request.dataset, request.path, driven_by_raw(driving))
    seed = int(request.cfg.train.seed) if seed is None else seed
    summary: dict = {"out": str(request.folder), "step": step_of(request.path), "seed": seed}
    if truncation is not None:
        summary["truncation"] = truncation
    if interpolate is not None:
        strip = interpolation_strip(generator, interpolate, num_samples, request.classes, seed, truncation)
        return {**summary, **write_interpolation(request.folder, strip)}
    labels = class_labels(request.classes, num_samples)
    samples, extra = run_samples(
        request.cfg, generator, discriminator, request.path, driving, num_samples, seed, batch_size, labels, truncation
    )
    summary.update(extra)
    if format == "npz":
        return {**summary, **write_npz(request.folder, as_exported(samples), labels)}
    return {**summary, **write_png(request.folder, as_exported(samples), labels, request.classes)}


@dataclass
class Request:
    """What :func:`check_request` established, before anything is written."""

    cfg: DictConfig  # the run's saved config
    path: str  # the checkpoint drawn from
    dataset: Dataset
    classes: list[int] | None  # a conditional run's classes to draw, in turn (None: unconditional)
    folder: Path  # where the files go


def check_request(
    run_dir: str | Path,
    out: str | Path | None,
    checkpoint: str | int,
    num_samples: int,
    format: str,
    classes: list[int] | None,
    interpolate: int | None,
    overwrite: bool,
    batch_size: int,
    driving: SamplingOptions,
    truncation: float | None = None,
) -> Request:
    """Every check of :func:`generate`'s keys against the run, or a ConfigError naming the key."""
    from gantrain.data import DATASETS
    from gantrain.evaluation.draw import check_driven_sampling
    from gantrain.evaluation.saved_run import checkpoint_path, saved_run
    from gantrain.evaluation.truncation import check_truncation

    if out is None:
        raise ConfigError("out", "required: gantrain-generate run_dir=<run directory> out=<folder>")
    run, cfg = saved_run(run_dir)
    path = checkpoint_path(run, checkpoint)
    for key, value in (("num_samples", num_samples), ("batch_size", batch_size)):
        if value < 1:
            raise ConfigError(key, f"must be >= 1, got {value}")
    if format not in FORMATS:
        raise ConfigError("format", f"unknown format '{format}'; known: {', '.join(FORMATS)}")
    check_interpolation(interpolate)
    check_sampling(driving)
    check_truncation(truncation, driving.sampling)
    if driving.sampling != "none":
        check_driven_sampling(cfg, "sampling")
        if interpolate is not None:
            raise ConfigError("interpolate", "draws a path through the noise; it does not combine with sampling")
    dataset = DATASETS.build(cfg.dataset)
    drawn_classes = chosen_classes(classes, dataset.classes if cfg.model.get("conditional") else 0)
    if not dataset.is_image and (format == "png" or interpolate is not None):
        raise ConfigError(
            "format" if interpolate is None else "interpolate",
            f"{cfg.dataset.name} samples are 2-D points, not images: use format=npz",
        )
    folder = Path(out).expanduser()
    check_target(folder, "out", overwrite, folder=True)
    return Request(cfg, path, dataset, drawn_classes, folder)


def write_interpolation(folder: Path, image) -> dict:
    """``interpolation.png``: rows of images along a slerp (:mod:`gantrain.evaluation.interpolation`)."""
    write_into(folder, lambda staging: image.save(staging / "interpolation.png"))
    return {"written": str(folder / "interpolation.png")}


def write_npz(folder: Path, samples: np.ndarray, labels: np.ndarray | None) -> dict:
    """One ``samples.npz``: ``x`` the samples, ``y`` their classes (conditional)."""
    arrays = {"x": samples} if labels is None else {"x": samples, "y": labels}
    # mypy matches **arrays against savez's allow_pickle: bool; the keys are x and y
    write_into(folder, lambda staging: np.savez(staging / "samples.npz", **arrays))  # type: ignore[arg-type]
    return {"written": len(samples), "file": str(folder / "samples.npz")}


def write_png(folder: Path, images: np.ndarray, labels: np.ndarray | None, classes: list[int] | None) -> dict:
    """Numbered PNGs (:func:`write_pngs`), and how many of each class."""
    write_into(folder, lambda staging: write_pngs(staging, images, labels))
    counts: dict[str, int] = {}
    if labels is not None:
        assert classes is not None  # labels are drawn for the requested classes (class_labels)
        counts = {str(k): int((labels == k).sum()) for k in classes}
    return {"written": len(images), **({"per_class": counts} if counts else {})}


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


def usage() -> str:
    """``gantrain-generate --help``: what the command does and every key with its default."""
    return usage_text(
        "gantrain-generate run_dir=<run directory> out=<folder> [key=value ...]",
        __doc__,
        GenerateCommand,
        "A summary of what was written is printed as one JSON line.",
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``key=value`` arguments, one-line errors, exit 2 on bad input."""
    result = run_command("gantrain-generate", GenerateCommand, generate, usage, argv)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
