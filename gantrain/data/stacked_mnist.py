"""Stacked MNIST (Metz et al. 2017; the VEEGAN/PacGAN protocol): three MNIST digits drawn at random
and stacked as the R, G, B channels, 28x28x3, 1000 modes (one per digit triple).

Usage: ``gantrain dataset=stacked_mnist dataset.path=<mnist.npz>``; evaluated by ``gantrain-eval``
with gantrain's MNIST classifier on each channel: modes covered and KL to uniform over the 1000.
"""

from __future__ import annotations

import numpy as np
from omegaconf import OmegaConf

from gantrain.data import DATASETS, Dataset
from gantrain.errors import ConfigError


@DATASETS.register("stacked_mnist", kind="stacked", held_out="split")
def stacked_mnist(path: str | None = None, split: str = "train", num_points: int = 100_000, seed: int = 0) -> Dataset:
    """uint8 (num_points, 28, 28, 3); labels 100 * R digit + 10 * G digit + B digit when MNIST has labels."""
    if num_points < 1:
        raise ConfigError("dataset.num_points", f"must be >= 1, got {num_points}")
    digits = DATASETS.build(OmegaConf.create({"name": "mnist", "path": path, "split": split}))
    picks = np.random.default_rng(seed).integers(len(digits.x), size=(num_points, 3))
    x = np.concatenate([digits.x[picks[:, c]] for c in range(3)], axis=-1)
    y = None if digits.y is None else (digits.y[picks] * np.array([100, 10, 1])).sum(axis=1)
    return Dataset("stacked_mnist", x, y)
