"""Each loss against values computed by hand, and the gradient penalty against analytic critics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.losses import LOSSES, Objective
from gantrain.penalties import GRADIENT_PENALTY, critic_scores

REAL = tf.constant([2.0, -1.0])
FAKE = tf.constant([0.5, -3.0])


def softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def build(name: str, **options) -> Objective:
    from omegaconf import OmegaConf

    return LOSSES.build(OmegaConf.create({"name": name, **options}))


def test_minimax_discriminator_is_binary_cross_entropy():
    objective = build("gan")
    expected = [-math.log(sigmoid(r)) - math.log(1 - sigmoid(f)) for r, f in zip([2.0, -1.0], [0.5, -3.0])]
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), expected, rtol=1e-6)


def test_minimax_generator_minimises_log_one_minus_d():
    objective = build("gan")
    expected = [math.log(1 - sigmoid(f)) for f in [0.5, -3.0]]
    np.testing.assert_allclose(objective.g_loss(FAKE), expected, rtol=1e-6)
    # G gains by raising D's logit on its samples.
    assert objective.g_loss(tf.constant([5.0])) < objective.g_loss(tf.constant([0.0]))


def test_non_saturating_generator_minimises_minus_log_d():
    objective = build("nsgan")
    np.testing.assert_allclose(objective.g_loss(FAKE), [softplus(-0.5), softplus(3.0)], rtol=1e-6)
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), build("gan").d_loss(REAL, FAKE))


def test_wasserstein_signs():
    objective = build("wgan_gp")
    # The critic minimises D(fake) - D(real): it wants real scores high and fake scores low.
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), [0.5 - 2.0, -3.0 + 1.0])
    np.testing.assert_allclose(objective.g_loss(FAKE), [-0.5, 3.0])
    assert objective.penalty is GRADIENT_PENALTY and objective.penalty_weight == 10.0


def test_gp_weight_is_configurable_and_checked():
    assert build("wgan_gp", gp_weight=2.5).penalty_weight == 2.5
    with pytest.raises(ConfigError, match=r"^loss\.gp_weight: must be >= 0"):
        build("wgan_gp", gp_weight=-1)


def test_unknown_loss_lists_known_ones():
    with pytest.raises(ConfigError, match="unknown loss 'wgan'; known: gan, nsgan, wgan_gp"):
        build("wgan")


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.0, 0.1]])
def test_penalty_of_linear_critic(w):
    """D(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 for every example."""
    w = tf.constant(w)
    critic = lambda x: tf.linalg.matvec(x, w)  # noqa: E731
    real = tf.random.normal([5, 2], seed=1)
    fake = tf.random.normal([5, 2], seed=2)
    eps = tf.random.uniform([5], seed=3)
    expected = (np.linalg.norm(w.numpy()) - 1.0) ** 2
    d_real, d_fake, penalty = critic_scores(critic, real, fake, GRADIENT_PENALTY, eps)
    np.testing.assert_allclose(penalty, [expected] * 5, rtol=1e-5)
    # The batched call scores real and fake examples as separate calls would.
    np.testing.assert_allclose(d_real, critic(real), rtol=1e-6)
    np.testing.assert_allclose(d_fake, critic(fake), rtol=1e-6)


def test_penalty_uses_one_interpolation_weight_per_example():
    """D(x) = ||x||^2 / 2 has gradient x: at x_hat = eps * real the norm is eps_i * ||real_i||."""
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=[1, 2, 3])  # noqa: E731
    real = tf.ones([3, 2, 2, 1])  # ||real_i|| = 2
    fake = tf.zeros_like(real)
    eps = tf.constant([0.0, 0.25, 1.0])
    expected = [(0.0 * 2 - 1) ** 2, (0.25 * 2 - 1) ** 2, (1.0 * 2 - 1) ** 2]
    np.testing.assert_allclose(critic_scores(critic, real, fake, GRADIENT_PENALTY, eps)[2], expected, atol=1e-5)


def test_no_penalty_scores_real_and_fake_in_one_call():
    calls = []
    critic = lambda x: calls.append(x.shape[0]) or tf.reduce_sum(x, axis=1)  # noqa: E731
    d_real, d_fake, penalty = critic_scores(critic, tf.ones([3, 2]), tf.zeros([3, 2]))
    assert calls == [6]
    np.testing.assert_allclose(d_real, [2, 2, 2])
    np.testing.assert_allclose(d_fake, [0, 0, 0])
    np.testing.assert_allclose(penalty, [0, 0, 0])
