"""``gantrain-export``: a trained run's generator written as a file other programs load.

    gantrain-export run_dir=<run> out=<folder> format=savedmodel|keras|tflite|onnx   (gantrain-export --help)

Restores the generator from a checkpoint as gantrain-generate does (the moving average of G when
the run kept one) and writes it into ``out`` in one ``format``: a TensorFlow SavedModel whose
``sample(seeds)`` gives the images gantrain-generate draws for the same seed and ``generate(z)``
G's output; a .keras file; TensorFlow Lite; ONNX (needs the onnx extra). A ``manifest.json``
beside it says what the model takes and gives, from which run, step and versions.

Usage: ``export("outputs/run", "exports/run", format="savedmodel")`` -> a summary dict.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from gantrain.commands.generate import write_into
from gantrain.commands.keys import run_command, usage_text
from gantrain.errors import ConfigError
from gantrain.run.directory import check_target


@dataclass
class ExportCommand:
    """The keys of ``gantrain-export``: which run and checkpoint, the format and where to write."""

    run_dir: str = field(default="???", metadata={"help": "the run directory to export from (required)"})
    out: str | None = field(default=None, metadata={"help": "the folder to write into (required; new or empty)"})
    format: str = field(default="savedmodel", metadata={"help": "savedmodel, keras, tflite or onnx"})
    checkpoint: str = field(
        default="latest", metadata={"help": "latest, best (kept by eval.select during training) or a step number"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "write into a folder that is not empty (files of the same names are replaced)"}
    )


def export(
    run_dir: str | Path,
    out: str | Path | None,
    format: str = "savedmodel",
    checkpoint: str | int = "latest",
    overwrite: bool = False,
) -> dict:
    """Write the run's generator at ``checkpoint`` into ``out`` in ``format``, with ``manifest.json``;
    returns what was written. Every check runs before ``out`` is touched."""
    from gantrain.data import DATASETS
    from gantrain.evaluation.saved_run import checkpoint_path, restore_models, saved_run
    from gantrain.export_formats import FORMATS, check_onnx

    if out is None:
        raise ConfigError("out", "required: gantrain-export run_dir=<run directory> out=<folder>")
    if format not in FORMATS:
        raise ConfigError("format", f"unknown format '{format}'; known: {', '.join(FORMATS)}")
    run, cfg = saved_run(run_dir)
    path = checkpoint_path(run, checkpoint)
    if format == "onnx":
        check_onnx()
    folder = Path(out).expanduser()
    check_target(folder, "out", overwrite, folder=True)
    dataset = DATASETS.build(cfg.dataset)
    generator, _ = restore_models(cfg, dataset, path)
    classes = dataset.classes if cfg.model.get("conditional") else 0  # as restore_models builds G
    written: list[str] = []

    def write(staging: Path) -> None:
        written.append(FORMATS[format](generator, staging, cfg.model.name))
        (staging / "manifest.json").write_text(
            json.dumps(manifest(cfg, generator, classes, path, format, written[0]), indent=2)
        )

    write_into(folder, write)
    return {
        "out": str(folder),
        "format": format,
        "file": str(folder / written[0]),
        "manifest": str(folder / "manifest.json"),
    }


def manifest(cfg, generator, classes: int, path: str, format: str, file: str) -> dict:
    """What the export takes and gives, and where it came from: the run's config, step, G kept
    (moving average or raw) and the versions it was written with."""
    from omegaconf import OmegaConf

    from gantrain import __version__
    from gantrain.export_formats import SEED_RULE
    from gantrain.models.conditioning import noise_size
    from gantrain.run.checkpoints import step_of
    from gantrain.run.environment import package_version

    shape = [int(d) for d in generator.outputs[0].shape[1:]]
    is_image = len(shape) == 3
    return {
        "format": format,
        "file": file,
        "model": cfg.model.name,
        "output": "images (n, H, W, C) in [-1, 1]" if is_image else "2-D points (n, 2)",
        "resolution": shape[0] if is_image else None,
        "channels": shape[-1] if is_image else None,
        "shape": shape,
        "classes": classes,
        "z": {"shape": [noise_size(generator)], "dtype": "float32", "distribution": "standard normal N(0, 1)"},
        "step": step_of(path),
        "generator": "ema" if cfg.train.get("ema") is not None else "raw",
        "seed_rule": SEED_RULE if format == "savedmodel" else None,
        # a .keras file of gantrain's own layers opens only after `import gantrain.models`
        "custom_layers": custom_layers(generator) if format == "keras" else None,
        "config": OmegaConf.to_container(cfg, resolve=True),
        "versions": {
            "gantrain": __version__,
            "tensorflow": package_version("tensorflow"),
            "keras": package_version("keras"),
        },
    }


def custom_layers(generator) -> list[str]:
    """The names of gantrain's own layer classes in ``generator`` (none: Keras alone can load it)."""
    classes = {type(layer) for layer in generator.layers}
    return sorted(c.__name__ for c in classes if c.__module__.startswith("gantrain."))


def usage() -> str:
    """``gantrain-export --help``: what the command does and every key with its default."""
    return usage_text(
        "gantrain-export run_dir=<run directory> out=<folder> format=savedmodel|keras|tflite|onnx [key=value ...]",
        __doc__,
        ExportCommand,
        "A summary of what was written is printed as one JSON line.",
    )


def main(argv: list[str] | None = None) -> None:
    """Console entry point: ``key=value`` arguments, one-line errors, exit 2 on bad input."""
    result = run_command("gantrain-export", ExportCommand, export, usage, argv)
    if result is not None:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
