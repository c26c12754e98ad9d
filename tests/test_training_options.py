"""Training options: moving average of G, learning-rate decay, weight clipping, the GON objective,
top-k training."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.training.gon import AUXILIARIES, log_softplus
from gantrain.training.schedules import LearningRate
from gantrain.training.step import best_scored, mean_of_best, top_k_fraction
from tests.conftest import build_step, overrides_of

MLP = ["model=mlp", "model.z_dim=2", "model.g_hidden=[8]", "model.d_hidden=[8]", "dataset=ring8"]
DATA = tf.constant(np.random.default_rng(0).normal(size=(256, 2)), tf.float32)


def make_step(loss: dict, *extra: str, lr=1e-2):
    """(compiled step, gan) of a tiny MLP GAN, batch 16, n_critic 2, Adam(lr) with Keras's betas."""
    gan, step = build_step(
        [
            *MLP,
            *overrides_of("loss", loss),
            "train.batch_size=16",
            "train.n_critic=2",
            f"train.g_lr={lr}",
            f"train.d_lr={lr}",
            "train.beta1=0.9",
            "train.beta2=0.999",
            *extra,
        ],
        DATA,
    )
    return step, gan


def test_moving_average_follows_its_formula():
    step, gan = make_step({"name": "nsgan"}, "train.ema=0.9")
    generator, average = gan.generator, gan.ema
    expected = [w.numpy() for w in generator.trainable_weights]  # starts as a copy of G
    for _ in range(3):
        step()
        expected = [0.9 * e + 0.1 * w.numpy() for e, w in zip(expected, generator.trainable_weights, strict=True)]
    for e, a in zip(expected, average.model.trainable_weights, strict=True):
        np.testing.assert_allclose(a.numpy(), e, rtol=1e-5, atol=1e-7)
    # and it is not G itself
    assert not np.allclose(average.model.trainable_weights[0].numpy(), generator.trainable_weights[0].numpy())


def test_learning_rate_decays_linearly_to_zero():
    rate = LearningRate(0.1, decay_steps=100)
    assert [float(rate(i)) for i in (0, 25, 100, 150)] == pytest.approx([0.1, 0.075, 0.0, 0.0])
    assert float(LearningRate(0.1)(10**6)) == pytest.approx(0.1)
    rate.scale.assign(0.5)  # what a divergence rollback does
    assert float(rate(50)) == pytest.approx(0.025)


def test_decay_reaches_the_optimizer():
    rate = LearningRate(0.1, decay_steps=4)
    optimizer = keras.optimizers.SGD(rate)
    w = keras.Variable(0.0)
    steps = []
    for _ in range(5):
        before = float(w.numpy())
        optimizer.apply([tf.constant(1.0)], [w])
        steps.append(before - float(w.numpy()))
    np.testing.assert_allclose(steps, [0.1, 0.075, 0.05, 0.025, 0.0], atol=1e-7)


def test_weight_clipping_keeps_every_critic_weight_in_range():
    step, gan = make_step({"name": "wgan", "clip": 0.01})
    step()
    values = np.concatenate([w.numpy().ravel() for w in gan.discriminator.trainable_weights])
    assert np.abs(values).max() <= 0.01 + 1e-7
    assert np.isclose(np.abs(values).max(), 0.01)  # lr 1e-2 pushes weights to the bound


def test_gon_objective_by_hand():
    aux = AUXILIARIES.build(OmegaConf.create({"name": "gon", "weight": 2.0, "alpha": 0.2, "beta": 0.1}))
    h_real = tf.constant([[1.0, -1.0]])
    h_fake = tf.constant([[0.5, 2.0]])
    sp = lambda x: math.log1p(math.exp(x))  # noqa: E731
    expected = -0.2 * math.log(sp(1.0)) + sp(0.5) + sp(-1.0) - 0.1 * math.log(sp(2.0))
    np.testing.assert_allclose(aux.network_loss(h_real, h_fake), [expected], rtol=1e-6)
    np.testing.assert_allclose(aux.generator_loss(h_fake), [2.0 * (-sp(0.5) + 0.1 * math.log(sp(2.0)))], rtol=1e-6)
    # log(softplus(h)) stays finite far below zero, where softplus underflows
    assert float(log_softplus(tf.constant(-200.0))) == pytest.approx(-200.0)


def test_gon_weights_are_checked():
    with pytest.raises(ConfigError, match=r"^aux\.beta: must be > 0"):
        AUXILIARIES.build(OmegaConf.create({"name": "gon", "beta": 0.0}))


def test_gon_trains_beside_the_critic_and_reaches_the_generator():
    step, gan = make_step({"name": "nsgan"}, "aux=gon")
    network = gan.gon.network
    assert network.output_shape == (None, 2)
    before = [w.numpy().copy() for w in network.trainable_weights]
    metrics = step()
    assert np.isfinite(float(metrics["aux_loss"]))
    assert all(not np.allclose(b, w.numpy()) for b, w in zip(before, network.trainable_weights, strict=True))
    # G's objective includes GON's terms: with a heavier weight the same step reports another g_loss
    heavy, _ = make_step({"name": "nsgan"}, "aux=gon", "aux.weight=5.0")
    assert float(heavy()["g_loss"]) != pytest.approx(float(metrics["g_loss"]))


def test_top_k_fraction_starts_whole_and_decays_per_epoch_to_its_floor():
    fraction = lambda it: float(top_k_fraction(it, floor=0.5, decay=0.9, steps_per_epoch=10))  # noqa: E731
    assert [fraction(0), fraction(10), fraction(20), fraction(5)] == pytest.approx([1.0, 0.9, 0.81, 0.9**0.5])
    assert fraction(10_000) == pytest.approx(0.5)


def test_best_scored_keeps_the_highest_scores():
    losses = tf.constant([10.0, 20.0, 30.0, 40.0])
    scores = tf.constant([0.1, 5.0, -1.0, 3.0])
    np.testing.assert_array_equal(best_scored(losses, scores, tf.constant(0.5)), [20.0, 40.0])
    np.testing.assert_array_equal(best_scored(losses, scores, tf.constant(0.6)), [20.0, 40.0, 10.0])  # ceil(2.4)
    np.testing.assert_array_equal(best_scored(losses, scores, tf.constant(1.0)), [20.0, 40.0, 10.0, 30.0])


def test_top_k_generator_learns_from_its_best_scored_samples():
    # decay 1e-6 reaches the floor after one generator step (an epoch is 256 / 16 = 16 steps)
    full, _ = make_step({"name": "nsgan"})
    best_half, _ = make_step({"name": "nsgan"}, "train.top_k=0.5", "train.top_k_decay=1e-6")
    first = [float(full()["g_loss"]), float(best_half()["g_loss"])]
    assert first[1] == pytest.approx(first[0])  # the first step learns from the whole batch
    # Same weights and draws in the second step: the best-scored half has the lower -log D(G(z)).
    second_full, second_half = float(full()["g_loss"]), float(best_half()["g_loss"])
    assert second_half < second_full - 1e-3


def test_the_averaged_generator_has_batch_norm_statistics_of_its_own():
    """Not G's moving statistics (they belong to G's weights): the averaged weights' own, the mean of
    the batch statistics over the fixed standing-statistics noise."""
    data = tf.constant(np.random.default_rng(0).integers(0, 256, (64, 8, 8, 1)), tf.uint8)
    gan, step = build_step(
        [
            "model=dcgan",
            "model.z_dim=3",
            "model.g_channels=4",
            "model.d_channels=2",
            "model.kernel_size=3",
            "loss=nsgan",
            "train.ema=0.5",
            "train.g_lr=0.05",
            "train.d_lr=0.05",
            "train.batch_size=16",
            "train.n_critic=1",
        ],
        data,
    )
    generator, average = gan.generator, gan.ema
    step(3)
    average.standing_statistics()
    norm = next(layer for layer in average.model.layers if isinstance(layer, keras.layers.BatchNormalization))
    raw = next(layer for layer in generator.layers if isinstance(layer, keras.layers.BatchNormalization))
    noise = tf.reshape(tf.random.stateless_normal([16, 64, 3], seed=[0, 3]), [1024, 3])
    inputs = keras.Model(average.model.input, norm.input)(noise).numpy()
    np.testing.assert_allclose(norm.moving_mean.numpy(), inputs.mean(axis=(0, 1, 2)), rtol=1e-4, atol=1e-6)
    batch_variances = inputs.reshape(16, 64, *inputs.shape[1:]).var(axis=(1, 2, 3)).mean(axis=0)
    np.testing.assert_allclose(norm.moving_variance.numpy(), batch_variances, rtol=1e-4, atol=1e-6)
    assert not np.allclose(norm.moving_mean.numpy(), raw.moving_mean.numpy(), atol=1e-3)


@pytest.mark.parametrize("fraction", [0.25, 0.5, 0.6, 1.0])
def test_the_fixed_shape_mean_of_the_best_equals_the_sliced_one(fraction):
    """What XLA compiles (the batch's shape, all but the best zeroed) is the mean over the best."""
    rng = np.random.default_rng(0)
    losses, scores = (tf.constant(rng.normal(size=10), tf.float32) for _ in range(2))
    fraction = tf.constant(fraction)
    sliced = mean_of_best(losses, scores, fraction)
    np.testing.assert_allclose(mean_of_best(losses, scores, fraction, fixed_shapes=True), sliced, rtol=1e-6)
    np.testing.assert_allclose(sliced, np.mean(best_scored(losses, scores, fraction)), rtol=1e-6)


def test_top_k_under_xla_learns_from_the_best_scored_samples():
    """The same check as above, both steps compiled by XLA (whose normal sampler draws other noise
    than TensorFlow's kernels, so XLA runs are compared with XLA runs)."""
    xla = ("train.jit_compile=true",)
    full, _ = make_step({"name": "nsgan"}, *xla)
    best_half, _ = make_step({"name": "nsgan"}, "train.top_k=0.5", "train.top_k_decay=1e-6", *xla)
    assert float(best_half()["g_loss"]) == pytest.approx(float(full()["g_loss"]), rel=1e-5)
    assert float(best_half()["g_loss"]) < float(full()["g_loss"]) - 1e-3


@pytest.mark.parametrize("model, warned", [("dcgan", True), ("mlp", False)])
def test_xla_on_a_cpu_warns_for_convolutional_models(make_cfg, mnist_npz, caplog, model, warned):
    from gantrain.run.train import check

    data = [f"dataset.path={mnist_npz}"] if model == "dcgan" else ["dataset=ring8"]
    check(make_cfg(f"model={model}", *data, "train.jit_compile=true"))
    assert ("train.jit_compile=true on a CPU" in caplog.text) is warned


@pytest.mark.parametrize("has_bfloat16", [True, False])
def test_mixed_bfloat16_warns_on_a_cpu_without_bfloat16(make_cfg, caplog, monkeypatch, has_bfloat16):
    """Whatever CPU runs the test: the probe of the CPU's bfloat16 instructions says yes or no."""
    import gantrain.run.train as train_module

    monkeypatch.setattr(train_module, "cpu_has_bfloat16", lambda: has_bfloat16)
    train_module.check(make_cfg("model=mlp", "dataset=ring8", "train.precision=mixed_bfloat16"))
    warned = "train.precision=mixed_bfloat16: this CPU has no bfloat16 instructions" in caplog.text
    assert warned is not has_bfloat16
