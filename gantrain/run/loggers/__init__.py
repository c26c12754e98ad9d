"""Where a run's numbers and pictures go besides metrics.jsonl: the ``logger`` config group, by name
(tensorboard, csv, wandb, mlflow), one or several at once (``logger=[tensorboard,csv]``).

Each option's keys sit under its own name (``logger.wandb.project``), the lightning-hydra-template
layout, so that several options compose side by side; they are the keyword arguments of the function
registered under that name, which opens the logger. Every logger gets the step's metrics (the record
metrics.jsonl has), the run's config flattened to dotted keys (when the run is new: a resume
continues the same logged run) and the preview grids (samples/step_NNNNNN.png).

Usage::

    check_loggers(cfg.get("logger"))       # before the run directory is written to
    with open_loggers(cfg.get("logger"), Opening(run, cfg, environment, start, resumed)) as loggers:
        loggers.metrics(step, record)
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from omegaconf import DictConfig, OmegaConf

from gantrain.errors import ConfigError
from gantrain.registry import Registry
from gantrain.run.directory import RunDir

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class LoggerFacts:
    """What a logger declares where it registers: the optional package it needs (an extra of
    gantrain's); whether it writes one run outside the run directory, which only the chief of a
    multi-worker run logs to (each other worker writes its own copy of the run directory)."""

    package: str | None = None
    chief_only: bool = False


LOGGERS = Registry("logger", facts=LoggerFacts())


@dataclass(frozen=True)
class Opening:
    """What a logger is opened with: the run, its config as saved, the machine it runs on, the
    step training starts from (0, or the checkpoint a resume continues from); ``chief``: false in
    the other workers of a multi-worker run."""

    run: RunDir
    config: DictConfig
    environment: dict[str, Any]
    step: int
    resumed: bool
    chief: bool = True

    def params(self) -> dict[str, str]:
        """The config as dotted keys and their values as text (``train.steps`` -> ``"10000"``)."""
        return flatten(OmegaConf.to_container(self.config, resolve=True))


def flatten(node: Any, prefix: str = "") -> dict[str, str]:
    """Dotted key -> value as YAML writes it; lists stay whole (``[translation, cutout]``)."""
    if not isinstance(node, dict):
        return {prefix: "null" if node is None else str(node).lower() if isinstance(node, bool) else str(node)}
    found: dict[str, str] = {}
    for key, value in node.items():
        found.update(flatten(value, f"{prefix}.{key}" if prefix else str(key)))
    return found


class Logger:
    """One destination of the run's metrics, config and preview grids."""

    def metrics(self, step: int, record: dict[str, float]) -> None:
        raise NotImplementedError

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        """The preview grid written to ``path`` (PNG); ``pixels``: the same image, (H, W) or (H, W, C) uint8."""
        raise NotImplementedError

    def close(self, failed: bool) -> None:
        """The run ended (``failed``: by an error), or this process stops writing it."""
        raise NotImplementedError


def chosen(node: DictConfig | None) -> dict[str, DictConfig]:
    """Logger name -> its options as a registry node (``name`` plus the keys under it); none for
    ``logger=[]`` or ``~logger``."""
    if node is None:
        return {}
    return {str(name): OmegaConf.merge({"name": name}, options) for name, options in node.items()}  # type: ignore[misc]


def check_loggers(node: DictConfig | None) -> None:
    """Each chosen logger's options, and the package it needs: one line naming the extra to install."""
    for name, options in chosen(node).items():
        LOGGERS.options(options, ("opening",), key=f"logger.{name}")
        package = LOGGERS.facts(name).package
        if package is None:
            continue
        try:
            importlib.import_module(package)
        except ImportError:
            raise ConfigError(
                "logger", f'{name} needs the {package} package, not installed here; pip install "gantrain[{package}]"'
            ) from None


class Loggers:
    """The chosen loggers as one: each call goes to all of them; closing closes every one."""

    def __init__(self, node: DictConfig | None, opening: Opening):
        self.loggers: list[Logger] = []
        try:
            for name, options in chosen(node).items():
                if LOGGERS.facts(name).chief_only and not opening.chief:
                    continue
                kwargs = LOGGERS.options(options, ("opening",), key=f"logger.{name}")
                self.loggers.append(LOGGERS.get(name)(opening, **kwargs))
        except BaseException:
            self.close(failed=True)  # those opened before the one that failed
            raise

    def __enter__(self) -> Loggers:
        return self

    def __exit__(self, kind, *exc) -> None:
        self.close(failed=kind is not None)

    def close(self, failed: bool) -> None:
        for logger in self.loggers:
            logger.close(failed)

    def metrics(self, step: int, record: dict[str, float]) -> None:
        for logger in self.loggers:
            logger.metrics(step, record)

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        for logger in self.loggers:
            logger.image(step, path, pixels)


# The options register themselves on import.
from gantrain.run.loggers import csv, mlflow, tensorboard, wandb  # noqa: E402, F401
