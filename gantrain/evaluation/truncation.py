"""The truncation trick (Brock et al. 2019, BigGAN): G's Gaussian noise with every entry beyond ±ψ
drawn again, from the same seeded stream, until none is. Samples come nearer the typical image,
at the cost of variety; ψ=None leaves the noise as drawn.

Usage: ``z = truncated(z, 0.7, redraw)`` with ``redraw(k)`` the k-th fresh draw of z's shape.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from gantrain.errors import ConfigError


def check_truncation(truncation: float | None, sampling: str = "none") -> None:
    """ψ must be > 0 (null: none); D-driven sampling draws its own noise, which ψ would not reach."""
    if truncation is None:
        return
    if not truncation > 0:
        raise ConfigError("truncation", f"must be > 0 (every |z_i| <= truncation) or null, got {truncation}")
    if sampling != "none":
        raise ConfigError("truncation", f"does not combine with sampling={sampling}, which draws its own noise")


def truncated(z: np.ndarray, truncation: float | None, redraw: Callable[[int], np.ndarray]) -> np.ndarray:
    """``z`` with each entry beyond ±``truncation`` replaced by the same entry of ``redraw(1)``, those
    still beyond by ``redraw(2)``'s, and so on. Whole draws of z's shape, so an entry's value
    depends on its position only: the first rows are the same however many rows are drawn."""
    if truncation is None:
        return z
    round_ = 0
    while (outside := np.abs(z) > truncation).any():
        round_ += 1
        z = np.where(outside, redraw(round_), z)
    return z
