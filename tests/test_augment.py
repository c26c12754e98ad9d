"""Differentiable augmentation (train.augment): each transform against a hand-computed case,
gradients through it, p=0 as no augmentation, ADA's adaptive probability, the mirrored step and
bitwise resume."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.models import MODELS
from gantrain.run.strategies import STRATEGIES
from gantrain.training.augment import (
    ADA_IMAGES,
    ADA_INTERVAL,
    Augmentation,
    color,
    cutout,
    translation,
)
from tests.conftest import (
    TINY,
    assert_same_state,
    assert_same_step,
    build_step,
    straight_and_resumed,
)

IMAGES = tf.reshape(tf.range(2 * 8 * 8 * 1, dtype=tf.float32), [2, 8, 8, 1])


def test_translation_moves_whole_pixels_and_fills_the_border_with_zero():
    # 8 pixels, ratio 1/8: reach 1, shifts -1, 0, 1 from u in thirds.
    u = tf.constant([[0.9, 0.5], [0.5, 0.1]])  # image 0: +1 along rows; image 1: -1 along columns
    out = translation(IMAGES, u).numpy()[..., 0]
    x = IMAGES.numpy()[..., 0]
    np.testing.assert_array_equal(out[0, :7], x[0, 1:])
    np.testing.assert_array_equal(out[0, 7], 0)
    np.testing.assert_array_equal(out[1, :, 1:], x[1, :, :7])
    np.testing.assert_array_equal(out[1, :, 0], 0)


def test_cutout_zeroes_a_square_of_half_the_side():
    # Side 8: a 4x4 square centred at floor(u * 9): u = 4.5/9 -> rows/columns 2..5; u = 0 -> 0..1.
    u = tf.constant([[4.5 / 9, 4.5 / 9], [0.0, 8.5 / 9]])
    out = cutout(tf.ones([2, 8, 8, 1]), u).numpy()[..., 0]
    expected = np.ones((2, 8, 8))
    expected[0, 2:6, 2:6] = 0
    expected[1, 0:2, 6:8] = 0  # centre 0 and 8: the square is partly outside the image
    np.testing.assert_array_equal(out, expected)


def test_color_is_brightness_then_saturation_then_contrast():
    x = np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)).astype(np.float32)
    u = np.array([[0.75, 0.25, 0.9], [0.1, 0.8, 0.3]], np.float32)
    expected = []
    for image, (b, s, c) in zip(x, u, strict=True):
        image = image + (b - 0.5)
        image = (image - image.mean(axis=-1, keepdims=True)) * (2 * s) + image.mean(axis=-1, keepdims=True)
        image = (image - image.mean()) * (c + 0.5) + image.mean()
        expected.append(image)
    np.testing.assert_allclose(color(tf.constant(x), tf.constant(u)), np.stack(expected), rtol=1e-5, atol=1e-6)


def test_probability_chooses_per_image_and_transform():
    augment = Augmentation(("translation", "cutout"), p=0.5, seed=0)
    assert augment.width == 6  # each transform: its own uniforms and one for whether it applies
    # Image 0: translation applied (0.2 < 0.5), cutout not; image 1: neither.
    u = tf.constant([[0.2, 0.9, 0.5, 0.7, 0.5, 0.5], [0.6, 0.9, 0.5, 0.9, 0.5, 0.5]])
    out = augment(IMAGES, u)
    np.testing.assert_array_equal(out[0], translation(IMAGES[:1], u[:1, 1:3])[0])
    np.testing.assert_array_equal(out[1], IMAGES[1])


def test_the_gradient_flows_back_through_every_transform():
    """d sum(T(x)) / dx: 1 where a pixel is still seen, 0 where it left the image or was cut out;
    color's gradient is its scale."""
    x = tf.ones([1, 8, 8, 1])
    with tf.GradientTape(persistent=True) as tape:
        tape.watch(x)
        moved = tf.reduce_sum(translation(x, tf.constant([[0.9, 0.5]])))
        cut = tf.reduce_sum(cutout(x, tf.constant([[4.5 / 9, 4.5 / 9]])))
        scaled = tf.reduce_sum(color(x, tf.constant([[0.5, 0.5, 0.9]])))
    seen = np.ones((8, 8))
    seen[0] = 0  # shifted by +1: row 0 is never read
    np.testing.assert_array_equal(tape.gradient(moved, x)[0, ..., 0], seen)
    kept = np.ones((8, 8))
    kept[2:6, 2:6] = 0
    np.testing.assert_array_equal(tape.gradient(cut, x)[0, ..., 0], kept)
    # Contrast (x - mean) * c + mean: the sum does not change, so each pixel's gradient is 1.
    np.testing.assert_allclose(tape.gradient(scaled, x), np.ones((1, 8, 8, 1)), rtol=1e-6)


DCGAN = [
    "model=dcgan",
    *TINY["dcgan"],
    "model.g_batchnorm=false",
    "train.batch_size=8",
    "train.n_critic=2",
    "train.g_lr=1e-3",
    "train.d_lr=1e-3",
]
DATA = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1)).astype(np.uint8))


def two_steps(*extra: str) -> tuple[dict[str, float], list[np.ndarray]]:
    gan, step = build_step([*DCGAN, *extra], DATA)
    step()
    metrics = {k: float(v) for k, v in step().items()}
    return metrics, gan.generator.get_weights() + gan.discriminator.get_weights()


def test_with_p_zero_the_step_is_the_step_without_augmentation_bit_for_bit():
    plain = two_steps()
    never = two_steps("train.augment=[color,translation,cutout]", "train.augment_p=0")
    assert never[0] == plain[0]
    for a, b in zip(plain[1], never[1], strict=True):
        np.testing.assert_array_equal(a, b)
    # ... and it is the probability that made them equal: at p=1 the same step differs.
    always = two_steps("train.augment=[color,translation,cutout]")
    assert always[0]["d_loss"] != plain[0]["d_loss"]


def test_the_generator_learns_through_the_augmentation():
    """G's update goes through D's view of its samples: with a cutout over the whole image
    (nothing of G's output reaches D) G gets no gradient; with translation it does."""
    gan, _ = build_step([*DCGAN, "train.augment=[translation]"], DATA)
    z = tf.random.stateless_normal([4, 4], seed=[0, 0])
    with tf.GradientTape() as tape:
        views = gan.augment(gan.generator(z, training=True), tf.fill([4, gan.augment.width], 0.5))
        score = tf.reduce_sum(gan.discriminator(views, training=True))
    grads = tape.gradient(score, gan.generator.trainable_variables)
    assert all(g is not None for g in grads) and any(float(tf.reduce_max(tf.abs(g))) > 0 for g in grads)
    everything = lambda x, u: cutout(x, u, ratio=2.0)  # noqa: E731
    with tf.GradientTape() as tape:
        score = tf.reduce_sum(gan.discriminator(everything(gan.generator(z, training=True), tf.fill([4, 2], 0.5))))
    assert all(float(tf.reduce_max(tf.abs(g))) == 0 for g in tape.gradient(score, gan.generator.trainable_variables))


def test_ada_moves_p_every_four_steps_by_its_speed():
    augment = Augmentation(("cutout",), p="auto", seed=0, images_per_step=1000)
    speed = 1000 * ADA_INTERVAL / ADA_IMAGES
    for _ in range(ADA_INTERVAL - 1):
        augment.observe(tf.constant(0.9))  # D is too sure of the reals ...
    assert float(augment.p) == 0.0
    augment.observe(tf.constant(0.9))
    assert float(augment.p) == pytest.approx(speed)  # ... so, at the 4th step, more augmentation
    for _ in range(2 * ADA_INTERVAL):
        augment.observe(tf.constant(0.2))
    assert float(augment.p) == 0.0  # down again, and never below 0


def test_ada_in_the_step_reports_p_and_the_sign_of_d_on_reals():
    """D made to score everything +100 (sure of the reals, above the target) raises p after four
    steps; made to score -100 (below it), lowers p again. Far from 0, the updates keep the sign."""
    gan, step = build_step([*DCGAN, "train.augment=[translation]", "train.augment_p=auto"], DATA)
    logit = gan.discriminator.layers[-1]
    speed = 8 * 2 * ADA_INTERVAL / ADA_IMAGES  # batch x n_critic real images per step
    for score, p in ((100.0, speed), (-100.0, 0.0)):
        logit.kernel.assign(tf.zeros_like(logit.kernel))
        logit.bias.assign([score])
        metrics = step(ADA_INTERVAL)
        assert float(metrics["real_sign"]) == np.sign(score)
        assert float(metrics["augment_p"]) == float(gan.augment.p) == pytest.approx(p)


def test_mirrored_step_with_augmentation_equals_default_step():
    model = {"name": "dcgan", "z_dim": 4, "g_channels": 4, "d_channels": 4, "kernel_size": 3, "g_batchnorm": False}
    keras.utils.set_random_seed(0)
    init_g, init_d = MODELS.build(OmegaConf.create(model), data_shape=(8, 8, 1))
    results = []
    for strategy in (
        tf.distribute.get_strategy(),
        STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})),
    ):
        gan, step = build_step(
            [*DCGAN, "train.augment=[color,translation,cutout]", "train.augment_p=auto", "train.beta2=0.999"],
            DATA,
            strategy,
        )
        gan.generator.set_weights(init_g.get_weights())
        gan.discriminator.set_weights(init_d.get_weights())
        metrics = {k: float(v) for k, v in step(ADA_INTERVAL).items()}
        results.append((metrics, gan.generator.get_weights() + gan.discriminator.get_weights()))
    assert_same_step(*results)


def test_resume_with_adaptive_augmentation_is_bitwise(tmp_path, make_cfg, mnist_npz):
    options = [
        "model=dcgan",
        *TINY["dcgan"],
        f"dataset.path={mnist_npz}",
        "train.batch_size=8",
        "train.n_critic=1",
        "train.augment=[color,translation,cutout]",
        "train.augment_p=auto",
        "train.checkpoint_every=3",
        "train.sample_every=100",
        "train.log_every=1",
    ]
    ckpt = straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=3)
    assert_same_state(*ckpt)
    names = [name for name, _ in tf.train.list_variables(ckpt[0])]
    for part in ("augment_rng", "augment_p", "augment_signs", "augment_steps"):
        assert any(name.startswith(part) for name in names), part
