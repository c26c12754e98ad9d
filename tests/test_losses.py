"""Each loss against values computed by hand, and the gradient penalty against analytic critics."""

import math

import numpy as np
import pytest
import tensorflow as tf

from gantrain.errors import ConfigError
from gantrain.training.losses import LOSSES, Objective
from gantrain.training.penalties import (
    DRAGAN,
    GRADIENT_PENALTY,
    ONE_SIDED_GRADIENT_PENALTY,
    R1,
    R1_R2,
    critic_scores,
)

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
    expected = [-math.log(sigmoid(r)) - math.log(1 - sigmoid(f)) for r, f in zip([2.0, -1.0], [0.5, -3.0], strict=True)]
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
    with pytest.raises(
        ConfigError, match="unknown loss 'wgan_c'; known: gan, hinge, lsgan, nsgan, rpgan, wgan, wgan_gp$"
    ):
        build("wgan_c")


@pytest.mark.parametrize("w", [[3.0, 4.0], [0.6, 0.8], [0.0, 0.1]])
def test_penalty_of_linear_critic(w):
    """D(x) = w.x has gradient w everywhere: the penalty is (||w|| - 1)^2 for every example."""
    w = tf.constant(w)
    critic = lambda x: tf.linalg.matvec(x, w)  # noqa: E731
    real = tf.random.normal([5, 2], seed=1)
    fake = tf.random.normal([5, 2], seed=2)
    eps = tf.random.uniform([5], seed=3)
    expected = (np.linalg.norm(w.numpy()) - 1.0) ** 2
    d_real, d_fake, penalty, _ = critic_scores(critic, real, fake, GRADIENT_PENALTY, eps)
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
    d_real, d_fake, penalty, _ = critic_scores(critic, tf.ones([3, 2]), tf.zeros([3, 2]))
    assert calls == [6]
    np.testing.assert_allclose(d_real, [2, 2, 2])
    np.testing.assert_allclose(d_fake, [0, 0, 0])
    np.testing.assert_allclose(penalty, [0, 0, 0])


def test_wgan_clip_is_checked_and_kept():
    assert build("wgan", clip=0.05).clip == 0.05
    assert build("wgan").penalty is None
    with pytest.raises(ConfigError, match=r"^loss\.clip: must be > 0"):
        build("wgan", clip=0)


def test_hinge_counts_only_margin_violations():
    objective = build("hinge")
    # real 2.0 is past the margin (0), real -1.0 violates it by 2; fake 0.5 by 1.5, fake -3 not.
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), [0.0 + 1.5, 2.0 + 0.0])
    np.testing.assert_allclose(objective.g_loss(FAKE), [-0.5, 3.0])


def test_least_squares_targets_one_for_real_zero_for_fake():
    objective = build("lsgan")
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), [0.5 * 1.0 + 0.5 * 0.25, 0.5 * 4.0 + 0.5 * 9.0])
    np.testing.assert_allclose(objective.g_loss(FAKE), [0.5 * 0.25, 0.5 * 16.0])


@pytest.mark.parametrize("name", ["gan", "nsgan", "wgan", "hinge", "lsgan", "rpgan"])
def test_every_loss_takes_every_penalty(name):
    assert build(name, penalty="none").penalty is None
    assert build(name, penalty="r1r2").penalty is R1_R2
    assert build(name, penalty="gp").penalty is GRADIENT_PENALTY
    assert build(name, penalty="gp", one_sided=True).penalty is ONE_SIDED_GRADIENT_PENALTY
    assert build(name, penalty="dragan").penalty is DRAGAN
    assert build(name, penalty="r1", gp_weight=0.5).penalty is R1
    assert build(name, penalty="r1", gp_weight=0.5).penalty_weight == 0.5


def test_penalty_options_are_checked():
    with pytest.raises(ConfigError, match=r"^loss\.penalty: .*'l2'"):
        build("nsgan", penalty="l2")
    with pytest.raises(ConfigError, match=r"^loss\.one_sided: applies to penalty gp or dragan, not r1$"):
        build("nsgan", penalty="r1", one_sided=True)
    assert build("wgan_gp", penalty="none").penalty is None


def linear_critic(w):
    return lambda x: tf.linalg.matvec(x, tf.constant(w))


def test_one_sided_penalty_ignores_gradients_flatter_than_one():
    real, fake, eps = tf.ones([3, 2]), tf.zeros([3, 2]), tf.fill([3], 0.5)
    for w, expected in (([0.3, 0.4], 0.0), ([3.0, 4.0], 16.0)):
        penalty = critic_scores(linear_critic(w), real, fake, ONE_SIDED_GRADIENT_PENALTY, eps).penalty
        np.testing.assert_allclose(penalty, [expected] * 3, rtol=1e-5)


def test_r1_is_half_the_squared_gradient_norm_at_real_examples():
    """D(x) = ||x||^2 / 2 has gradient x: R1 = ||x_real||^2 / 2, whatever the fakes."""
    critic = lambda x: 0.5 * tf.reduce_sum(tf.square(x), axis=1)  # noqa: E731
    real = tf.constant([[3.0, 4.0], [1.0, 0.0]])
    fake = tf.constant([[100.0, 100.0], [-7.0, 2.0]])
    penalty = critic_scores(critic, real, fake, R1, tf.fill([2], 0.5)).penalty
    np.testing.assert_allclose(penalty, [12.5, 0.5], rtol=1e-6)


def test_dragan_points_perturb_the_real_batch_only():
    real = tf.constant([[0.0, 0.0], [2.0, 2.0]])  # std over the batch: 1
    noise = tf.constant([[1.0, 0.5], [0.0, 1.0]])
    eps = tf.constant([1.0, 0.5])
    points = DRAGAN.points(real, tf.fill([2, 2], 99.0), eps, noise)
    np.testing.assert_allclose(points, [[0.5, 0.25], [2.0, 2.25]], rtol=1e-6)
    # Around the data the cost is WGAN-GP's: (||w|| - 1)^2 for a linear critic.
    penalty = critic_scores(linear_critic([3.0, 4.0]), real, real, DRAGAN, eps, noise).penalty
    np.testing.assert_allclose(penalty, [16.0, 16.0], rtol=1e-5)


def test_relativistic_pairing_compares_each_real_with_its_fake():
    """RpGAN (R3GAN/Trainer.py): D minimises softplus(-(D(x_r) - D(x_f))), G softplus(-(D(x_f) - D(x_r))),
    pair by pair: with REAL = [2, -1] and FAKE = [0.5, -3] the differences are 1.5 and 2."""
    objective = build("rpgan")
    assert objective.relativistic and objective.penalty is R1_R2 and objective.penalty_weight == 0.05
    np.testing.assert_allclose(objective.d_loss(REAL, FAKE), [softplus(-1.5), softplus(-2.0)], rtol=1e-6)
    np.testing.assert_allclose(objective.g_loss(FAKE, REAL), [softplus(1.5), softplus(2.0)], rtol=1e-6)
    # D gains by raising a real above its fake; G by raising the fake above its real.
    assert float(objective.d_loss(REAL + 1, FAKE)[0]) < float(objective.d_loss(REAL, FAKE)[0])
    assert float(objective.g_loss(FAKE + 1, REAL)[0]) < float(objective.g_loss(FAKE, REAL)[0])
    assert not build("nsgan").relativistic


def test_r1_r2_is_half_the_squared_gradient_norms_at_real_and_fake_examples():
    """D(x) = ||x||^2 / 2 has gradient x: R1 + R2 = (||x_real||^2 + ||x_fake||^2) / 2, pair by pair,
    from the same call of D that scores the examples."""
    calls = []

    def critic(x):
        calls.append(x.shape[0])
        return 0.5 * tf.reduce_sum(tf.square(x), axis=1)

    real = tf.constant([[3.0, 4.0], [1.0, 0.0]])
    fake = tf.constant([[1.0, 2.0], [-2.0, 2.0]])
    d_real, d_fake, penalty, _ = critic_scores(critic, real, fake, R1_R2, tf.fill([2], 0.5))
    np.testing.assert_allclose(penalty, [12.5 + 2.5, 0.5 + 4.0], rtol=1e-6)
    np.testing.assert_allclose(d_real, [12.5, 0.5], rtol=1e-6)
    np.testing.assert_allclose(d_fake, [2.5, 4.0], rtol=1e-6)
    assert calls == [4]  # one forward pass of D for the loss and both penalties
    calls.clear()
    r1 = critic_scores(critic, real, fake, R1, tf.fill([2], 0.5)).penalty
    np.testing.assert_allclose(r1, [12.5, 0.5], rtol=1e-6)
    assert calls == [4]


def test_the_r1_r2_weight_is_gamma_and_must_not_be_negative():
    with pytest.raises(ConfigError, match=r"^loss\.gp_weight: must be >= 0, got -1"):
        build("rpgan", gp_weight=-1.0)
    assert build("rpgan", gp_weight=2.0).penalty_weight == 2.0
