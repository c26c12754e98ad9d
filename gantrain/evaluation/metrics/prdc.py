"""Precision and recall (Kynkäänniemi et al. 2019) and density and coverage (Naeem et al. 2020):
how much of the samples lies on the real data's manifold, and how much of that manifold the
samples reach, each manifold estimated by k-nearest-neighbour balls around its points.

A point's ball has the radius of the distance to its k-th nearest *other* point of its own set
(Euclidean). ``precision``: the share of samples inside some real ball; ``recall``: the share of
real points inside some sample ball; ``density``: the mean number of real balls a sample lies
in, over k (1 when samples fall like the data; above 1 where they crowd the densest parts);
``coverage``: the share of real points whose ball holds at least one sample. Comparisons are
strict (``<``), as in the reference code (``prdc`` 0.2, ``compute_prdc``).

The reference builds dense N x N distance matrices; here they are computed a block of rows at a
time, so 50,000 points in 2048 dimensions fit in memory.

Usage: ``sample_quality(real_features, sample_features)`` -> ``{"precision", "recall", "density",
"coverage"}`` with k = 3 for the first two and k = 5 for the others, as their papers recommend.
"""

from __future__ import annotations

import numpy as np

PRECISION_RECALL_K = 3  # Kynkäänniemi et al. 2019
DENSITY_COVERAGE_K = 5  # Naeem et al. 2020
BLOCK = 1 << 23  # distances held at once (64 MB of float64)


def sample_quality(real: np.ndarray, fake: np.ndarray) -> dict[str, float]:
    """Precision and recall with k = 3, density and coverage with k = 5, of ``fake`` (M, D)
    against as many of ``real`` (N >= M, D) as there are samples (a fixed random choice): a
    ball's radius depends on how many points share the space, so both sets are of one size, as
    in the papers. NaN for sets of 5 points or fewer."""
    if len(real) > len(fake):
        real = real[np.sort(np.random.default_rng(0).choice(len(real), len(fake), replace=False))]
    if min(len(real), len(fake)) <= DENSITY_COVERAGE_K:  # no k-th neighbour: undefined, not an error
        return dict.fromkeys(("precision", "recall", "density", "coverage"), float("nan"))
    pr = prdc(real, fake, PRECISION_RECALL_K)
    dc = prdc(real, fake, DENSITY_COVERAGE_K)
    return {"precision": pr["precision"], "recall": pr["recall"], "density": dc["density"], "coverage": dc["coverage"]}


def prdc(real: np.ndarray, fake: np.ndarray, nearest_k: int) -> dict[str, float]:
    """Precision, recall, density and coverage of ``fake`` (M, D) against ``real`` (N, D) with
    ``nearest_k``-NN balls: ``compute_prdc`` of the reference, block by block."""
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    if min(len(real), len(fake)) <= nearest_k:
        raise ValueError(
            f"precision and recall with k={nearest_k} need more than {nearest_k} points in each set, "
            f"got {len(real)} real and {len(fake)} generated"
        )
    real_radii, fake_radii = knn_radii(real, nearest_k), knn_radii(fake, nearest_k)
    inside_real = np.zeros(len(fake), np.int64)  # real balls each sample lies in
    real_reached = np.zeros(len(real), bool)  # real points inside some sample ball (recall)
    covered = np.zeros(len(real), bool)  # real balls holding a sample (coverage)
    for rows, distances in blocks(real, fake):
        inside = distances < real_radii[rows, None]
        inside_real += inside.sum(axis=0)
        real_reached[rows] = (distances < fake_radii[None, :]).any(axis=1)
        covered[rows] = distances.min(axis=1) < real_radii[rows]
    return {
        "precision": float((inside_real > 0).mean()),
        "recall": float(real_reached.mean()),
        "density": float(inside_real.mean() / nearest_k),
        "coverage": float(covered.mean()),
    }


def knn_radii(points: np.ndarray, k: int) -> np.ndarray:
    """Each point's distance to its k-th nearest other point: the (k+1)-th smallest distance to
    the set, the point itself (at distance 0) included."""
    radii = np.empty(len(points))
    for rows, distances in blocks(points, points):
        radii[rows] = np.partition(distances, k, axis=1)[:, k]
    return radii


def blocks(a: np.ndarray, b: np.ndarray):
    """(row slice, Euclidean distances (rows, len(b))) of ``a`` to ``b``, a block of rows at a time."""
    b_squared = np.einsum("ij,ij->i", b, b)
    step = max(1, BLOCK // max(len(b), 1))
    for start in range(0, len(a), step):
        rows = slice(start, min(start + step, len(a)))
        block = a[rows]
        squared = np.einsum("ij,ij->i", block, block)[:, None] + b_squared[None, :] - 2 * block @ b.T
        yield rows, np.sqrt(np.maximum(squared, 0))
