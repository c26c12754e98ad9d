"""2-D toy mixtures of Gaussians, generated in code (the benchmarks of VEEGAN and PacGAN)."""

from __future__ import annotations

import numpy as np

from gantrain.data import DATASETS, Dataset
from gantrain.errors import ConfigError


def ring8_centers() -> np.ndarray:
    """(8, 2) mode centres evenly spaced on the unit circle."""
    angles = 2 * np.pi * np.arange(8) / 8
    return np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid25_centers() -> np.ndarray:
    """(25, 2) mode centres at {-4, -2, 0, 2, 4}^2."""
    ticks = np.arange(-4.0, 5.0, 2.0)
    return np.stack(np.meshgrid(ticks, ticks), axis=-1).reshape(-1, 2)


def _mixture(name: str, centers: np.ndarray, num_points: int, std: float, seed: int) -> Dataset:
    if num_points < 1:
        raise ConfigError("dataset.num_points", f"must be >= 1, got {num_points}")
    if std < 0:
        raise ConfigError("dataset.std", f"must be >= 0, got {std}")
    rng = np.random.default_rng(seed)
    modes = rng.integers(len(centers), size=num_points)
    points = centers[modes] + std * rng.standard_normal((num_points, 2))
    return Dataset(name, points.astype(np.float32), centers=centers, std=std)


@DATASETS.register("ring8", kind="mixture", held_out="reseed")
def ring8(num_points: int = 100_000, std: float = 0.01, seed: int = 0) -> Dataset:
    """8 Gaussians on the unit circle, sigma = 0.01."""
    return _mixture("ring8", ring8_centers(), num_points, std, seed)


@DATASETS.register("grid25", kind="mixture", held_out="reseed")
def grid25(num_points: int = 100_000, std: float = 0.05, seed: int = 0) -> Dataset:
    """25 Gaussians on a 5x5 grid with spacing 2, sigma = 0.05."""
    return _mixture("grid25", grid25_centers(), num_points, std, seed)
