"""The training step follows Algorithm 1: fresh data and noise for every critic update."""

import numpy as np
import pytest
import tensorflow as tf

from gantrain.training.losses import Objective, wasserstein_d, wasserstein_g
from gantrain.training.penalties import Penalty, interpolates, unit_norm_cost
from gantrain.training.step import to_model_range
from tests.conftest import build_step

BATCH, N_CRITIC = 8, 3


def run_step(objective: Objective, d_lr: float = 1e-9):
    """One step of a tiny MLP GAN with ``objective``, built as train() builds it."""
    data = tf.constant(np.stack([np.arange(1000.0), -np.arange(1000.0)], axis=1), tf.float32)
    overrides = [
        "model=mlp",
        "model.z_dim=2",
        "model.g_hidden=[8]",
        "model.d_hidden=[8]",
        "dataset=ring8",
        f"train.batch_size={BATCH}",
        f"train.n_critic={N_CRITIC}",
        "train.g_lr=1e-9",
        f"train.d_lr={d_lr}",
    ]  # ~frozen D: logits differ only by their inputs
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
    for (real_a, fake_a), (real_b, fake_b) in zip(seen, seen[1:], strict=False):
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


def test_a_relativistic_step_pairs_fakes_with_fresh_reals_for_d_and_for_g():
    """loss=rpgan, rebuilt by hand from the run's stream: D's update pairs the first real batch with
    G(d_noise) and charges gamma/2 (R1 + R2); G's update pairs G(g_noise) with a second, fresh real batch."""
    from gantrain import api
    from gantrain.config import check_train
    from gantrain.training.gan import build_gan
    from gantrain.training.step import TrainStep

    data = tf.constant(np.random.default_rng(0).normal(size=(64, 2)), tf.float32)
    cfg = api.compose(
        [
            "model=mlp",
            "model.z_dim=2",
            "model.g_hidden=[8]",
            "model.d_hidden=[8]",
            "loss=rpgan",
            "loss.gp_weight=0.5",
            "train.batch_size=8",
            "train.n_critic=1",
        ]
    )
    step = TrainStep(build_gan(cfg, (2,)), data, check_train(cfg.train))
    gan = step.gan
    rng = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)  # the step's draws, replayed
    index = rng.uniform([2, 8], 0, 64, dtype=tf.int64)  # one real batch for D, one for G
    d_noise, g_noise = rng.normal([1, 8, 2])[0], rng.normal([1, 8, 2])[0]
    d, g = gan.discriminator, gan.generator
    real, fake = tf.gather(data, index[0]), g(d_noise, training=True)
    with tf.GradientTape() as tape:
        tape.watch([real, fake])
        d_real, d_fake = tf.reshape(d(real), [-1]), tf.reshape(d(fake), [-1])
    grad_real, grad_fake = tape.gradient([d_real, d_fake], [real, fake])
    r1_r2 = 0.5 * (tf.reduce_sum(grad_real**2, axis=1) + tf.reduce_sum(grad_fake**2, axis=1))
    expected_d = tf.reduce_mean(tf.nn.softplus(-(d_real - d_fake))) + 0.5 * tf.reduce_mean(r1_r2)
    g_before = [w.numpy() for w in g.weights]

    metrics = step.compiled()
    assert float(metrics["d_loss"]) == pytest.approx(float(expected_d), rel=1e-5)
    assert float(metrics["gp"]) == pytest.approx(float(tf.reduce_mean(r1_r2)), rel=1e-5)
    g.set_weights(g_before)  # G as its update saw it; D is already updated then
    g_fake = tf.reshape(d(g(g_noise, training=True)), [-1])
    g_real = tf.reshape(d(tf.gather(data, index[1])), [-1])
    expected_g = tf.reduce_mean(tf.nn.softplus(-(g_fake - g_real)))
    assert float(metrics["g_loss"]) == pytest.approx(float(expected_g), rel=1e-5)


@pytest.mark.parametrize("jit_compile", [False, True])
def test_calls_of_any_length_share_one_trace(jit_compile):
    """A run's last call, shorter when the steps left are not a multiple of steps_per_call, reuses
    the step's one trace (and XLA compilation) instead of tracing it again for its length."""
    data = tf.random.stateless_normal([64, 2], seed=[0, 1])
    overrides = ["model=mlp", "model.z_dim=2", "model.g_hidden=[8]", "model.d_hidden=[8]", "train.batch_size=8"]
    gan, step = build_step([*overrides, f"train.jit_compile={str(jit_compile).lower()}"], data)
    for n in (4, 2, 1):
        step(n)
    step()  # one step, the default
    assert int(gan.step) == 8
    assert step.experimental_get_tracing_count() == 1
