"""A trained run in a notebook: its networks restored from a checkpoint, and the samples and
interpolation strips ``gantrain-generate`` writes, returned instead of written.

Usage::

    import gantrain
    run = gantrain.load("outputs/mnist")                 # or checkpoint="best", or a step
    images = run.sample(16, seed=1, truncation=0.7)      # uint8 (16, H, W, C)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gantrain.errors import ConfigError

if TYPE_CHECKING:
    import keras
    from omegaconf import DictConfig
    from PIL import Image

    from gantrain.data import Dataset


@dataclass
class LoadedRun:
    """A run's generator (the moving average of G when the run kept one, as ``gantrain-generate``
    draws from) and its discriminator (None when the checkpoint holds none) at one checkpoint."""

    cfg: DictConfig  # the run's saved config
    path: str  # the checkpoint restored
    dataset: Dataset
    generator: keras.Model
    discriminator: keras.Model | None

    @property
    def num_classes(self) -> int:
        """The classes a conditional run draws for (0: unconditional)."""
        return self.dataset.classes if self.cfg.model.get("conditional") else 0

    def sample(
        self,
        n: int,
        seed: int | None = None,
        classes: list[int] | None = None,
        truncation: float | None = None,
        batch_size: int = 500,
    ) -> np.ndarray:
        """``n`` samples: uint8 images (n, H, W, C), or float32 points (n, 2) of a 2-D toy run; the
        very ones ``gantrain-generate num_samples=n seed=... classes=... truncation=...`` writes
        (``seed`` None: the run's ``train.seed``; ``classes``: a conditional run's, drawn in turn)."""
        from gantrain.evaluation.draw import chosen_classes, class_labels, draw
        from gantrain.evaluation.measure import as_exported
        from gantrain.evaluation.truncation import check_truncation

        for key, value in (("n", n), ("batch_size", batch_size)):
            if value < 1:
                raise ConfigError(key, f"must be >= 1, got {value}")
        check_truncation(truncation)
        labels = class_labels(chosen_classes(classes, self.num_classes), n)
        return as_exported(draw(self.generator, n, self._seed(seed), batch_size, labels, truncation))

    def interpolate(
        self,
        n: int,
        rows: int = 8,
        classes: list[int] | None = None,
        seed: int | None = None,
        truncation: float | None = None,
    ) -> Image.Image:
        """The grid ``gantrain-generate interpolate=n num_samples=rows`` writes as interpolation.png:
        ``rows`` rows of ``n`` images along a slerp between two latents, or one row per class."""
        from gantrain.evaluation.draw import chosen_classes
        from gantrain.evaluation.interpolation import check_interpolation, interpolation_strip
        from gantrain.evaluation.truncation import check_truncation

        check_interpolation(n)
        check_truncation(truncation)
        if not self.dataset.is_image:
            raise ConfigError("interpolate", f"{self.cfg.dataset.name} samples are 2-D points, not images")
        drawn = chosen_classes(classes, self.num_classes)
        return interpolation_strip(self.generator, n, rows, drawn, self._seed(seed), truncation)

    def _seed(self, seed: int | None) -> int:
        return int(self.cfg.train.seed) if seed is None else seed


def load(run_dir: str | Path, checkpoint: str | int = "latest") -> LoadedRun:
    """The run in ``run_dir`` restored from ``checkpoint`` (``latest``, ``best`` or a step), or a
    ConfigError naming what is missing."""
    from gantrain.data import DATASETS
    from gantrain.evaluation.saved_run import checkpoint_path, restore_discriminator, restore_models, saved_run

    run, cfg = saved_run(run_dir)
    path = checkpoint_path(run, checkpoint)
    dataset = DATASETS.build(cfg.dataset)
    generator, discriminator = restore_models(cfg, dataset, path)
    try:
        restore_discriminator(discriminator, path)
    except ConfigError:
        discriminator = None
    return LoadedRun(cfg, path, dataset, generator, discriminator)
