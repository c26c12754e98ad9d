"""Distances between feature distributions: Fréchet distance (FID), kernel distance (KID), and the
Inception Score, on features from any extractor.

Usage::

    fd = frechet_distance(mu1, sigma1, mu2, sigma2)
    kid_mean, kid_std = kernel_inception_distance(features1, features2)
    is_mean, is_std = inception_score(class_probabilities)
"""

from __future__ import annotations

import numpy as np


def _sqrt_psd(matrix: np.ndarray) -> np.ndarray:
    """The symmetric square root of a positive semi-definite matrix; tiny negative eigenvalues
    (round-off of near-singular covariances) are clipped to zero."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)) between N(mu1, S1) and N(mu2, S2) (Dowson &
    Landau 1982; Heusel et al. 2017).

    tr((S1 S2)^(1/2)) is computed as tr((S1^(1/2) S2 S1^(1/2))^(1/2)), the same eigenvalues, of a
    symmetric matrix: real by construction, so near-singular covariances give no imaginary parts
    (the ``scipy.linalg.sqrtm`` route of the TTUR code has to discard them).
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape}, {mu2.shape}; sigma {sigma1.shape}, {sigma2.shape}")
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    trace_sqrt = float(np.sqrt(np.clip(np.linalg.eigvalsh((middle + middle.T) / 2), 0, None)).sum())
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def gaussian_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and covariance (unbiased, N - 1) of features (N, D)."""
    features = np.asarray(features, np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)


def kernel_inception_distance(
    features1: np.ndarray, features2: np.ndarray, num_subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """Unbiased MMD^2 with the kernel k(x, y) = (x.y / d + 1)^3, averaged over ``num_subsets``
    random subsets of ``subset_size`` examples from each set (Bińkowski et al. 2018): (mean, std)."""
    f1, f2 = np.asarray(features1, np.float64), np.asarray(features2, np.float64)
    d = f1.shape[1]
    m = min(subset_size, len(f1), len(f2))
    if m < 2:
        raise ValueError("kernel_inception_distance needs at least 2 examples per set")
    rng = np.random.default_rng(seed)
    estimates = []
    for _ in range(num_subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        # Unbiased: the diagonals k(x_i, x_i) are left out of the within-set means.
        within = (k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)) / (m * (m - 1))
        estimates.append(within - 2 * k_xy.mean())
    return float(np.mean(estimates)), float(np.std(estimates))


def inception_score(probs: np.ndarray, splits: int = 10) -> tuple[float, float]:
    """exp(E_x KL(p(y|x) || p(y))) over ``splits`` equal parts of the class probabilities (N, K)
    (Salimans et al. 2016): (mean, std) across the parts."""
    probs = np.asarray(probs, np.float64)
    if len(probs) < splits:
        raise ValueError(f"inception_score needs at least splits={splits} examples, got {len(probs)}")
    scores = []
    for part in np.array_split(probs, splits):
        marginal = part.mean(axis=0, keepdims=True)
        # 0 log 0 = 0: classes a sample gives no probability add nothing.
        kl = np.where(
            part > 0, part * (np.log(np.where(part > 0, part, 1)) - np.log(np.where(marginal > 0, marginal, 1))), 0
        )
        scores.append(np.exp(kl.sum(axis=1).mean()))
    return float(np.mean(scores)), float(np.std(scores))
