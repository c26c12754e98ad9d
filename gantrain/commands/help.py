"""``gantrain --help``: the config groups, and the composed config with each key's comment from the
YAML files it came from.

The options and keys given before ``--help`` are applied first, so ``gantrain dataset=folder
--help`` shows the folder dataset's own keys and ``gantrain experiment=grid25 --help`` what the
preset sets.

Usage: ``print(render_help(["dataset=folder"]))``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import cast

from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf, open_dict

from gantrain.config import config_dir

HEADER = """gantrain: train GANs from composable configs

Usage: gantrain [GROUP=OPTION ...] [KEY=VALUE ...]        one run, in outputs/<date>/<time>/
       gantrain -m [GROUP=A,B ...] [KEY=1,2 ...]           a sweep: one run per combination"""

FOOTER = """Examples:
  gantrain model=dcgan loss=wgan_gp dataset=mnist
  gantrain model=mlp dataset=grid25 loss=wgan_gp train.steps=2000
  gantrain experiment=grid25                  a preset from configs/experiment/
  gantrain experiment=grid25 ~aux             a preset without a group it sets
  gantrain dataset.path=/data/mnist.npz train.batch_size=128
  gantrain resume=outputs/2026-01-01/12-00-00 train.steps=20000
  gantrain -m loss=gan,nsgan,wgan_gp train.steps=1000   one job per value; summary.csv
Evaluate a run: gantrain-eval run_dir=<run directory>   (gantrain-eval --help lists its keys)
Write its samples: gantrain-generate run_dir=<run directory> out=<folder>   (gantrain-generate --help)
Export its generator: gantrain-export run_dir=<run directory> out=<folder> format=savedmodel|keras|tflite|onnx
In Python: run = gantrain.load("<run directory>"); run.sample(16, seed=1)   (README.md, "Python API")
docs/guides/training.md has every option with its paper, docs/reference/configuration.md every key. \
Hydra's own options: gantrain --hydra-help"""

_KEY = re.compile(r"^(\s*)([A-Za-z_][\w]*):(.*)$")


def render_help(overrides: list[str]) -> str:
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    choices = cast(dict[str, str | None], OmegaConf.to_container(cfg.hydra.runtime.choices))
    with open_dict(cfg):
        del cfg["hydra"]
    comments = key_comments(config_dir() / "config.yaml", "")
    for group, option in choices.items():
        path = config_dir() / group / f"{option}.yaml"
        if option is not None and not group.startswith("hydra") and path.is_file():
            comments.update(key_comments(path, group))
    groups = "\n".join(
        f"{group.name}: {', '.join(sorted(p.stem for p in group.glob('*.yaml')))}"
        for group in sorted(config_dir().iterdir())
        if group.is_dir() and group.name != "hydra"
    )
    given = f" (with {' '.join(overrides)})" if overrides else ""
    return "\n\n".join(
        [
            HEADER,
            "== Configuration groups ==\n"
            "Pick one option per group, e.g. model=mlp; drop a group a preset set with ~group.\n"
            "Loggers can be several at once: 'logger=[tensorboard,csv]'.\n"
            "To see an option's own keys, name it before --help: gantrain dataset=folder --help\n\n" + groups,
            f"== Config{given} ==\nEvery key can be set on the command line, e.g. train.steps=2000.\n\n"
            + _annotate(OmegaConf.to_yaml(cfg), comments),
            FOOTER,
        ]
    )


def key_comments(path: Path, package: str) -> dict[str, str]:
    """Dotted key -> its comment in a YAML file: the comment on its line, else the comment lines
    right above it. ``package``: the group a file's keys belong to (none for ``_global_``)."""
    found: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    above: list[str] = []
    for line in path.read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("#"):
            if "@package _global_" in stripped:
                package = ""
            else:
                above.append(stripped.lstrip("# "))
            continue
        match = _KEY.match(line)
        if not match:
            above = []
            continue
        indent, key, rest = len(match[1]), match[2], match[3]
        stack = [(i, k) for i, k in stack if i < indent] + [(indent, key)]
        dotted = ".".join(filter(None, [package, *(k for _, k in stack)]))
        inline = rest.split(" #", 1)[1].strip() if " #" in rest else ""
        if inline or above:
            found[dotted] = inline or " ".join(above)
        above = []
    return found


def _annotate(yaml: str, comments: dict[str, str]) -> str:
    lines: list[str] = []
    stack: list[tuple[int, str]] = []
    for line in yaml.splitlines():
        match = _KEY.match(line)
        if match:
            indent = len(match[1])
            stack = [(i, k) for i, k in stack if i < indent] + [(indent, match[2])]
            comment = comments.get(".".join(k for _, k in stack))
            if comment:
                line = f"{line.ljust(36)} # {comment}"
        lines.append(line)
    return "\n".join(lines)
