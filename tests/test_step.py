"""The training step follows Algorithm 1: fresh data and noise for every critic update."""

import numpy as np
import pytest
import tensorflow as tf

from gantrain.losses import Objective, wasserstein_d, wasserstein_g
from gantrain.penalties import Penalty, interpolates, unit_norm_cost
from gantrain.step import to_model_range
from tests.conftest import build_step

BATCH, N_CRITIC = 8, 3


def run_step(objective: Objective, d_lr: float = 1e-9):
    """One step of a tiny MLP GAN with ``objective``, built as train() builds it."""
    data = tf.constant(np.stack([np.arange(1000.0), -np.arange(1000.0)], axis=1), tf.float32)
    overrides = ["model=mlp", "model.z_dim=2", "model.g_hidden=[8]", "model.d_hidden=[8]", "dataset=ring8",
                 f"train.batch_size={BATCH}", f"train.n_critic={N_CRITIC}", "train.g_lr=1e-9",
                 f"train.d_lr={d_lr}"]  # ~frozen D: logits differ only by their inputs
    _, step = build_step(overrides, data, objective=objective)
    return step()


def recorder(records: list):
    def record(*tensors):
        records.append([t.numpy() for t in tensors])
        return 0

    return lambda *tensors: tf.py_function(record, list(tensors), tf.int32)


def recording_wasserstein_d(seen: list):
    """The Wasserstein critic loss, recording (d_real, d_fake) of every call into ``seen``."""
    rec = recorder(seen)

    def d_loss(d_real, d_fake):
        with tf.control_dependencies([rec(d_real, d_fake)]):
            return wasserstein_d(d_real, d_fake)

    return d_loss


def test_each_critic_update_sees_a_fresh_real_batch_and_fresh_noise():
    seen = []
    metrics = run_step(Objective(recording_wasserstein_d(seen), wasserstein_g))
    assert len(seen) == N_CRITIC
    for (real_a, fake_a), (real_b, fake_b) in zip(seen, seen[1:]):
        assert real_a.shape == (BATCH,)
        assert np.abs(real_a - real_b).max() > 1e-3
        assert np.abs(fake_a - fake_b).max() > 1e-3
    # The reported critic loss is the average over the critic updates.
    expected = np.mean([np.mean(fake - real) for real, fake in seen])
    np.testing.assert_allclose(float(metrics["d_loss"]), expected, rtol=1e-4)
    assert "gp" not in metrics


def test_interpolation_weight_is_uniform_and_per_example():
    seen = []
    rec = recorder(seen)

    def recorded_interpolates(real, fake, eps, noise=None):
        with tf.control_dependencies([rec(eps)]):
            return interpolates(real, fake, eps)

    run_step(Objective(wasserstein_d, wasserstein_g, Penalty(recorded_interpolates, unit_norm_cost), 10.0))
    draws = np.array([eps for (eps,) in seen])
    assert draws.shape == (N_CRITIC, BATCH)
    assert draws.min() >= 0 and draws.max() < 1
    assert len(np.unique(draws)) == draws.size  # a new weight per example and per update


def test_penalty_is_weighted_into_the_critic_loss():
    seen = []

    def one_per_example(grad):
        return tf.ones([tf.shape(grad)[0]])

    penalty = Penalty(interpolates, one_per_example)
    metrics = run_step(Objective(recording_wasserstein_d(seen), wasserstein_g, penalty, 2.5))
    adversarial = np.mean([np.mean(fake - real) for real, fake in seen])
    np.testing.assert_allclose(float(metrics["d_loss"]), adversarial + 2.5 * 1.0, rtol=1e-4)
    assert float(metrics["gp"]) == pytest.approx(1.0)


def test_uint8_images_map_to_minus_one_one():
    pixels = tf.constant([0, 255, 128], tf.uint8)
    np.testing.assert_allclose(to_model_range(pixels), [-1.0, 1.0, 128 / 127.5 - 1], atol=1e-6)
