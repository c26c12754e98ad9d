"""Mode coverage of a mixture of Gaussians, as in VEEGAN (Srivastava et al. 2017) and PacGAN
(Lin et al. 2018): a sample is high quality when it lies within 3 standard deviations of its
nearest mode centre.

Usage: ``mode_metrics(samples (N, 2), centers (K, 2), std)`` -> ``{"modes", "hq", "rkl"}``.
"""

from __future__ import annotations

import numpy as np


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL(q || uniform) for the histogram ``counts`` over K bins: 0 when spread evenly, log K when
    all in one bin (or when the histogram is empty)."""
    k = len(counts)
    if counts.sum() == 0:
        return float(np.log(k))
    q = counts[counts > 0] / counts.sum()
    return float(np.sum(q * np.log(q * k)))


def mode_metrics(samples: np.ndarray, centers: np.ndarray, std: float) -> dict[str, float]:
    """``modes``: modes with at least one high-quality sample; ``hq``: fraction of high-quality
    samples; ``rkl``: KL(q || uniform) where q is the histogram of high-quality samples over the
    K modes (0 when they spread evenly; log K when all sit in one mode or none is high quality).
    """
    distances = np.linalg.norm(samples[:, None, :] - centers[None, :, :], axis=-1)  # (N, K)
    nearest = distances.argmin(axis=1)
    good = distances[np.arange(len(samples)), nearest] <= 3 * std
    counts = np.bincount(nearest[good], minlength=len(centers))
    return {"modes": int((counts > 0).sum()), "hq": float(good.mean()), "rkl": kl_to_uniform(counts)}
