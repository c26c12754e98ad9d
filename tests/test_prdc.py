"""Precision, recall, density and coverage (gantrain.evaluation.metrics.prdc) against the reference package
``prdc`` on synthetic features, block by block as on one matrix, and on the published check of two
standard normals."""

import numpy as np
import prdc as reference
import pytest

import gantrain.evaluation.metrics.prdc as ours
from gantrain.evaluation.metrics import sample_quality


def features(n: int, dim: int, shift: float, scale: float, seed: int) -> np.ndarray:
    return (shift + scale * np.random.default_rng(seed).standard_normal((n, dim))).astype(np.float32)


@pytest.mark.parametrize("k", [3, 5])
@pytest.mark.parametrize("block", [ours.BLOCK, 997], ids=["one block", "many blocks"])
def test_the_same_numbers_as_the_reference_package(k, block, monkeypatch, capsys):
    monkeypatch.setattr(ours, "BLOCK", block)
    real, fake = features(700, 16, 0.0, 1.0, 0), features(500, 16, 0.4, 1.3, 1)
    expected = reference.compute_prdc(real, fake, k)
    assert ours.prdc(real, fake, k) == {name: float(value) for name, value in expected.items()}


def test_a_k_nearest_neighbour_radius_leaves_the_point_itself_out():
    points = np.array([[0.0], [1.0], [3.0], [7.0]])
    np.testing.assert_array_equal(ours.knn_radii(points, 1), [1.0, 1.0, 2.0, 4.0])
    np.testing.assert_array_equal(ours.knn_radii(points, 2), [3.0, 2.0, 3.0, 6.0])


def test_balls_are_open():
    """A sample exactly on a real ball's edge is outside it (the reference's strict <)."""
    real = np.array([[0.0], [1.0], [2.0], [3.0]])  # k = 1: every radius is 1
    on_the_edges = ours.prdc(real, np.array([[4.0], [5.0], [-1.0], [-3.0]]), 1)
    assert on_the_edges["precision"] == 0.0 and on_the_edges["coverage"] == 0.0
    inside = ours.prdc(real, np.array([[3.5], [5.0], [-0.5], [-3.0]]), 1)
    assert inside["precision"] == 0.5 and inside["density"] == 0.5 and inside["coverage"] == 0.5


def test_two_standard_normals_as_published():
    """The reference's check is 10,000 draws each, D = 1000, k = 5: precision 0.4772, recall 0.4705,
    density 1.0555, coverage 0.9735 for its draw (over a minute here, for ours and for the
    reference alike). At 1,000 draws, the same as the reference's numbers exactly; precision and
    recall are higher than at 10,000 (a ball's radius shrinks more slowly than the set grows)."""
    real, fake = features(1000, 1000, 0.0, 1.0, 2), features(1000, 1000, 0.0, 1.0, 3)
    result = ours.prdc(real, fake, 5)
    assert result == {name: float(value) for name, value in reference.compute_prdc(real, fake, 5).items()}
    assert 0.5 < result["precision"] < 0.7 and 0.5 < result["recall"] < 0.7
    assert 0.85 < result["density"] < 1.15 and 0.95 < result["coverage"] < 0.99


def test_sample_quality_uses_k_3_and_k_5_on_sets_of_one_size():
    real, fake = features(900, 8, 0.0, 1.0, 4), features(300, 8, 0.2, 1.0, 5)
    kept = real[np.sort(np.random.default_rng(0).choice(900, 300, replace=False))]
    three, five = ours.prdc(kept, fake, 3), ours.prdc(kept, fake, 5)
    assert sample_quality(real, fake) == {
        "precision": three["precision"],
        "recall": three["recall"],
        "density": five["density"],
        "coverage": five["coverage"],
    }


def test_too_few_samples_give_nan_not_an_error():
    assert all(np.isnan(v) for v in sample_quality(features(50, 4, 0.0, 1.0, 6), features(5, 4, 0.0, 1.0, 7)).values())
