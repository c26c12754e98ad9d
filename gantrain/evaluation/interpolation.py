"""Walks through a generator's noise: rows of images along the great circle (slerp) between two
latents, as ``gantrain-generate interpolate=n`` writes them.

Usage: ``image = interpolation_strip(generator, n=8, rows=4, classes=None, seed=0)`` -> a PIL image
(``truncation=0.7``: ends drawn with the truncation trick, :mod:`gantrain.evaluation.truncation`).
"""

from __future__ import annotations

import numpy as np

from gantrain.errors import ConfigError


def slerp(z0: np.ndarray, z1: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Points at fractions ``t`` (n,) along the great circle from z0 to z1 (each (z_dim,)), with
    their norms interpolated linearly; a straight line where the two are (anti)parallel."""
    u0, u1 = z0 / np.linalg.norm(z0), z1 / np.linalg.norm(z1)
    omega = np.arccos(np.clip(np.dot(u0, u1), -1.0, 1.0))
    t = t[:, None]
    if np.sin(omega) < 1e-6:
        return (1 - t) * z0 + t * z1
    unit = (np.sin((1 - t) * omega) * u0 + np.sin(t * omega) * u1) / np.sin(omega)
    return unit * ((1 - t) * np.linalg.norm(z0) + t * np.linalg.norm(z1))


def check_interpolation(interpolate: int | None) -> None:
    """A strip needs its two ends: ``interpolate`` (points per row) >= 2, or None for no strip."""
    if interpolate is not None and interpolate < 2:
        raise ConfigError("interpolate", f"needs at least 2 points (the two ends), got {interpolate}")


def interpolation_strip(
    generator, n: int, rows: int, classes: list[int] | None, seed: int, truncation: float | None = None
):
    """A grid with one slerp of ``n`` points per row: ``rows`` rows, each between its own two
    latents; or, conditional, one row per class between the same two latents. ``truncation``: the
    latents' entries beyond it drawn again from the same generator (None: as drawn)."""
    from gantrain.evaluation.truncation import truncated
    from gantrain.models.conditioning import generate as call
    from gantrain.models.conditioning import noise_size
    from gantrain.pictures import image_grid

    rng = np.random.default_rng(seed)
    shape = (rows if classes is None else 1, 2, noise_size(generator))
    ends = truncated(
        rng.standard_normal(shape).astype(np.float32),
        truncation,
        lambda _: rng.standard_normal(shape).astype(np.float32),
    )
    t = np.linspace(0.0, 1.0, n, dtype=np.float32)
    paths = np.stack([slerp(a, b, t) for a, b in ends]).astype(np.float32)  # (count, n, z_dim)
    if classes is None:
        z, labels = paths.reshape(-1, paths.shape[-1]), None
    else:
        z = np.tile(paths[0], (len(classes), 1))
        labels = np.repeat(np.asarray(classes, np.int32), n)
    return image_grid(call(generator, z, labels).numpy(), rows=len(z) // n)
