"""The training step follows Algorithm 1: fresh data and noise for every critic update."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.losses import Objective, wasserstein_d, wasserstein_g
from gantrain.models import MODELS
from gantrain.penalties import Penalty, interpolates, unit_norm_cost
from gantrain.step import make_train_step, to_model_range

BATCH, N_CRITIC = 8, 3


def run_step(objective: Objective, d_lr: float = 1e-9):
    keras.utils.set_random_seed(0)
    node = OmegaConf.create({"name": "mlp", "z_dim": 2, "g_hidden": [8], "d_hidden": [8]})
    generator, discriminator = MODELS.build(node, data_shape=(2,))
    data = tf.constant(np.stack([np.arange(1000.0), -np.arange(1000.0)], axis=1), tf.float32)
    step = make_train_step(
        generator=generator,
        discriminator=discriminator,
        g_optimizer=keras.optimizers.Adam(1e-9),
        d_optimizer=keras.optimizers.Adam(d_lr),  # ~frozen D: logits differ only by their inputs
        objective=objective,
        data=data,
        rng=tf.random.Generator.from_seed(1),
        batch_size=BATCH,
        n_critic=N_CRITIC,
        strategy=tf.distribute.get_strategy(),
    )
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
