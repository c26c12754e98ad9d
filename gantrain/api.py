"""A small Python API for notebooks and benchmarks, the same code path as the ``gantrain`` command.

Usage::

    from gantrain import api
    cfg = api.compose(["model=mlp", "dataset=grid25", "train.steps=500"])
    generator, discriminator = api.build_models(cfg)
    gan = api.build_gan(cfg)          # everything a run trains: networks, optimizers, RNG, ...
    metrics = api.train(cfg, run_dir="outputs/notebook")
    run = api.load("outputs/notebook")    # also gantrain.load: its networks, samples and strips
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose as hydra_compose
from hydra import initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, open_dict

from gantrain.config import config_dir
from gantrain.evaluation.loaded_run import LoadedRun


def compose(overrides: Sequence[str] = ()) -> DictConfig:
    """The config the command line would build from ``overrides`` (without Hydra's own node)."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = hydra_compose("config", overrides=list(overrides))
    GlobalHydra.instance().clear()
    with open_dict(cfg):
        cfg.pop("hydra", None)
    return cfg


def build_models(cfg: DictConfig):
    """``(generator, discriminator)`` for the config's model and dataset, in ``train.precision``,
    D taking packs of ``train.pack`` (the dataset is loaded to learn its example shape and, for a
    conditional model, its classes)."""
    from gantrain.data import load
    from gantrain.models import build_models as build

    dataset = load(cfg.dataset)
    return build(cfg.model, dataset.shape, cfg.train.precision, cfg.train.get("pack", 1), _classes(cfg, dataset))


def build_gan(cfg: DictConfig):
    """The run's objects (:class:`gantrain.training.gan.GAN`) for the config, as ``gantrain`` builds them
    (a conditional model for the dataset's classes)."""
    from gantrain.data import load
    from gantrain.training.gan import build_gan as build

    dataset = load(cfg.dataset)
    return build(cfg, dataset.shape, num_classes=_classes(cfg, dataset))


def _classes(cfg: DictConfig, dataset) -> int:
    """The classes a conditional model of ``dataset`` takes (0: unconditional), as train() checks them."""
    return dataset.conditional_classes() if cfg.model.get("conditional") else 0


def train(cfg: DictConfig, run_dir: str | Path, resume: bool = False) -> dict[str, float | str]:
    """Train into ``run_dir`` (continue it with ``resume=True``); returns the last metrics."""
    from gantrain.run.train import train as run_training

    return run_training(cfg, run_dir, resume=resume)


def load(run_dir: str | Path, checkpoint: str | int = "latest") -> LoadedRun:
    """The trained run in ``run_dir`` at ``checkpoint`` (``latest``, ``best`` or a step): its
    ``generator`` and ``discriminator``, ``sample(n, seed, classes, truncation)`` and ``interpolate(n, ...)``."""
    from gantrain.evaluation.loaded_run import load as load_run

    return load_run(run_dir, checkpoint)
