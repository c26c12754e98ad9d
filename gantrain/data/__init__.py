"""Datasets: each loader returns the whole training set as one in-memory array.

Images are uint8 NHWC (scaled to [-1, 1] inside the training step, so memory holds one uint8
copy); 2-D toys are float32 points (N, 2).

Usage: ``dataset = DATASETS.build(cfg.dataset)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from gantrain.registry import Registry

DATASETS = Registry("dataset")


@dataclass
class Dataset:
    name: str
    x: np.ndarray  # uint8 (N, H, W, C) images, or float32 (N, 2) points
    y: Optional[np.ndarray] = None  # class labels (N,), where the files have them
    # Mixtures of Gaussians: the mode centres (K, 2) and their common standard deviation.
    centers: Optional[np.ndarray] = None
    std: Optional[float] = None

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (28, 28, 1) or (2,)."""
        return tuple(self.x.shape[1:])

    @property
    def is_image(self) -> bool:
        return self.x.ndim == 4


# Loaders register themselves on import.
from gantrain.data import cifar10, folder, mnist, stacked_mnist, toys  # noqa: E402,F401
