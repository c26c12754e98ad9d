"""Fréchet distance, KID and Inception Score against closed forms and brute force."""

import math

import numpy as np
import pytest

from gantrain.evaluation.metrics import (
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
)


def test_frechet_distance_of_two_gaussians_is_the_closed_form():
    # Commuting (diagonal) covariances: tr((S1 S2)^(1/2)) = sum sqrt(a_i b_i).
    mu1, mu2 = np.array([0.0, 1.0, 2.0]), np.array([1.0, 1.0, 0.0])
    a, b = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = 1 + 0 + 4 + sum(a + b - 2 * np.sqrt(a * b))
    assert frechet_distance(mu1, np.diag(a), mu2, np.diag(b)) == pytest.approx(expected, rel=1e-10)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance([0.0], [[4.0]], [3.0], [[1.0]]) == pytest.approx(9 + 1)


def test_frechet_distance_with_rotated_covariances():
    """Non-commuting covariances: compare with the definition through an explicit matrix root."""
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T, b @ b.T
    values, vectors = np.linalg.eig(s1 @ s2)  # S1 S2 is similar to a PSD matrix: real eigenvalues >= 0
    expected = np.trace(s1) + np.trace(s2) - 2 * np.sqrt(values.real.clip(0)).sum()
    assert frechet_distance(np.zeros(4), s1, np.zeros(4), s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_of_a_set_with_itself_is_zero_even_when_singular():
    features = np.random.default_rng(0).normal(size=(50, 64))  # 50 < 64: a singular covariance
    mu, sigma = gaussian_statistics(features)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-6


def test_kid_matches_a_brute_force_computation():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 5)), rng.normal(0.5, 1.0, size=(30, 5))
    kernel = lambda a, b: (a @ b / 5 + 1) ** 3  # noqa: E731
    m = 30
    mean, std = kernel_inception_distance(x, y, num_subsets=1, subset_size=m, seed=3)
    pick = np.random.default_rng(3)
    xs, ys = x[pick.choice(40, m, replace=False)], y[pick.choice(30, m, replace=False)]
    xx = sum(kernel(xs[i], xs[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(kernel(ys[i], ys[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(kernel(xs[i], ys[j]) for i in range(m) for j in range(m)) / m**2
    assert mean == pytest.approx(xx + yy - 2 * xy, rel=1e-10)
    assert std == 0.0
    # Unbiased: two samples of one distribution average to about zero.
    same = kernel_inception_distance(
        rng.normal(size=(400, 5)), rng.normal(size=(400, 5)), num_subsets=20, subset_size=200
    )
    assert abs(same[0]) < 0.05 < kernel_inception_distance(x, y + 2)[0]


def test_inception_score_of_confident_uniform_predictions_is_the_number_of_classes():
    probs = np.eye(10)[np.arange(1000) % 10]
    mean, std = inception_score(probs, splits=10)
    assert mean == pytest.approx(10.0) and std == pytest.approx(0.0, abs=1e-9)
    # One class for everything, or uniform uncertainty: a score of 1.
    assert inception_score(np.eye(10)[np.zeros(100, int)])[0] == pytest.approx(1.0)
    assert inception_score(np.full((100, 10), 0.1))[0] == pytest.approx(1.0)
    # Half the classes, confidently: 5.
    assert inception_score(np.eye(10)[np.arange(100) % 5], splits=1)[0] == pytest.approx(5.0)
    assert math.isfinite(inception_score(np.random.default_rng(0).dirichlet(np.ones(10), 100))[0])
