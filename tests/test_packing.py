"""PacGAN's packing (train.pack) and networks (model.d_maxout, model.g_batchnorm): the packed D
against D on hand-concatenated inputs, the penalty per pack, pack=1 as the step before packing
existed, maxout as the max over pieces, the mirrored step and bitwise resume."""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain import api
from gantrain.config import check_train
from gantrain.errors import ConfigError
from gantrain.models.mlp import Maxout
from gantrain.run.strategies import STRATEGIES
from gantrain.training.gan import build_gan
from gantrain.training.penalties import GRADIENT_PENALTY, critic_scores
from gantrain.training.step import TrainStep, pack
from tests.conftest import (
    TINY,
    assert_equal_up_to_round_off,
    assert_same_state,
    assert_same_step,
    build_step,
    straight_and_resumed,
)

IMAGES = tf.constant(np.random.default_rng(0).integers(0, 256, (32, 8, 8, 1)).astype(np.uint8))
POINTS = tf.constant(np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32))
MLP = ["model=mlp", *TINY["mlp"], "loss=nsgan", "train.batch_size=8", "train.n_critic=1"]


def train_step(overrides: list[str], data: tf.Tensor, strategy=None) -> TrainStep:
    cfg = api.compose(overrides)
    return TrainStep(build_gan(cfg, tuple(data.shape[1:]), strategy), data, check_train(cfg.train))


def test_pack_puts_consecutive_examples_side_by_side_on_the_last_axis():
    images = tf.reshape(tf.range(4 * 2 * 2 * 3, dtype=tf.float32), [4, 2, 2, 3])
    np.testing.assert_array_equal(
        pack(images, 2), tf.stack([tf.concat([images[0], images[1]], -1), tf.concat([images[2], images[3]], -1)])
    )
    points = tf.reshape(tf.range(12, dtype=tf.float32), [6, 2])
    np.testing.assert_array_equal(pack(points, 3), [[0, 1, 2, 3, 4, 5], [6, 7, 8, 9, 10, 11]])
    assert pack(points, 1) is points


@pytest.mark.parametrize(
    "model, data",
    [(MLP, POINTS), (["model=dcgan", *TINY["dcgan"], "train.batch_size=8"], IMAGES)],
    ids=["mlp", "dcgan"],
)
def test_a_packed_discriminator_is_the_discriminator_on_concatenated_inputs(model, data):
    step = train_step([*model, "train.pack=2"], data)
    x = tf.cast(data[:8], tf.float32)
    expected = [
        float(step.gan.discriminator(tf.concat([x[i], x[i + 1]], -1)[None], training=True)[0, 0])
        for i in range(0, 8, 2)
    ]
    np.testing.assert_allclose(step.critic(x)[0], expected, rtol=1e-5, atol=1e-6)


def test_the_step_s_loss_is_the_mean_over_packs_of_real_and_fake_packs():
    """One step's d_loss, rebuilt by hand from the run's stream: m real examples side by side
    against m independent fakes side by side, the nsgan loss averaged over packs."""
    step = train_step([*MLP, "train.pack=4"], POINTS)
    gan = step.gan
    rng = tf.random.Generator.from_state(gan.rng.state.numpy(), gan.rng.algorithm)  # the step's draws, replayed
    index = rng.uniform([1, 8], 0, 64, dtype=tf.int64)[0]
    noise = rng.normal([1, 8, 4])[0]
    real, fake = tf.gather(POINTS, index), gan.generator(noise, training=True)
    concatenated = lambda x: tf.stack([tf.concat(list(x[i : i + 4]), -1) for i in (0, 4)])  # noqa: E731
    d_real = tf.reshape(gan.discriminator(concatenated(real), training=True), [-1])
    d_fake = tf.reshape(gan.discriminator(concatenated(fake), training=True), [-1])
    expected = float(tf.reduce_mean(tf.nn.softplus(-d_real) + tf.nn.softplus(d_fake)))
    assert float(step.compiled()["d_loss"]) == pytest.approx(expected, rel=1e-5)


def test_the_penalty_s_points_are_packs():
    """WGAN-GP with packs: one interpolation weight per pack, the gradient norm over the whole pack."""
    keras.utils.set_random_seed(0)
    critic_net = keras.Sequential([keras.Input((4,)), keras.layers.Dense(8, activation="tanh"), keras.layers.Dense(1)])
    critic = lambda x: tf.reshape(critic_net(pack(x, 2)), [-1])  # noqa: E731
    real, fake = tf.constant(POINTS[:4]), tf.constant(POINTS[4:8])
    eps = tf.constant([0.3, 0.3, 0.8, 0.8])
    penalty = critic_scores(critic, real, fake, GRADIENT_PENALTY, eps, pack=2).penalty
    points = tf.constant([[0.3], [0.8]]) * pack(real, 2) + tf.constant([[0.7], [0.2]]) * pack(fake, 2)
    with tf.GradientTape() as tape:
        tape.watch(points)
        scores = critic_net(points)
    norms = tf.norm(tape.gradient(scores, points), axis=1)
    np.testing.assert_allclose(penalty, (norms - 1.0) ** 2, rtol=1e-5)


# Metrics (float.hex) and a digest of the weights after two steps, recorded by the step as it was
# before packing existed, on another CPU; the weights themselves are in fixtures/ (their digest says
# they are those). pack=1 must reproduce them up to float round-off on any CPU.
BEFORE_PACKING = {
    "dcgan_gp_augment": (
        ["model=dcgan", *TINY["dcgan"], "train.batch_size=8", "train.n_critic=2", "train.augment=[translation,cutout]"],
        IMAGES,
        {"d_loss": "0x1.5f6c160000000p+1", "g_loss": "-0x1.c1acd20000000p-4", "gp": "0x1.0b35060000000p-2"},
        "bd6b4cbb051fd9724bf32b744504255140596479b2f11cd166233a334515bf84",
    ),
    "mlp_dragan_gon_topk": (
        [
            "model=mlp",
            *TINY["mlp"],
            "loss=nsgan",
            "loss.penalty=dragan",
            "aux=gon",
            "train.top_k=0.5",
            "train.batch_size=8",
            "train.n_critic=2",
        ],
        POINTS,
        {
            "aux_loss": "0x1.61f96c0000000p+0",
            "d_loss": "0x1.ce3e6c0000000p+2",
            "g_loss": "-0x1.2c47d20000000p-4",
            "gp": "0x1.2efce60000000p-1",
        },
        "0cb7b1a9b672574a4aef37945afd45a2d534946f3bcdd7fcb687711cbca7a0b6",
    ),
}


BEFORE_PACKING_WEIGHTS = Path(__file__).parent / "fixtures" / "before_packing_weights.npz"


def recorded_weights(case: str) -> list[np.ndarray]:
    with np.load(BEFORE_PACKING_WEIGHTS) as arrays:
        return [arrays[name] for name in sorted(arrays) if name.startswith(f"{case}/")]


def digest_of(weights: list[np.ndarray]) -> str:
    return hashlib.sha256(b"".join(np.ascontiguousarray(w).tobytes() for w in weights)).hexdigest()


@pytest.mark.parametrize("case", BEFORE_PACKING)
def test_the_recorded_weights_are_those_the_step_before_packing_reached(case):
    assert digest_of(recorded_weights(case)) == BEFORE_PACKING[case][3]


@pytest.mark.parametrize("case", BEFORE_PACKING)
def test_pack_one_is_the_step_before_packing(case):
    overrides, data, metrics, _ = BEFORE_PACKING[case]
    gan, step = build_step([*overrides, "train.pack=1"], data)
    step()
    reached = {name: float(value) for name, value in step().items()}
    assert reached.keys() == metrics.keys()
    for name, recorded in metrics.items():
        assert_equal_up_to_round_off(np.float32(reached[name]), np.float32(float.fromhex(recorded)), name)
    weights = gan.generator.get_weights() + gan.discriminator.get_weights()
    expected = recorded_weights(case)
    for i, (w, recorded) in enumerate(zip(weights, expected, strict=True)):
        assert_equal_up_to_round_off(w, recorded, f"weight {i}")


def test_maxout_is_the_max_over_each_unit_s_pieces():
    x = tf.constant([[1.0, -2.0, 3.0, 0.5, 0.25, -1.0]])
    np.testing.assert_array_equal(Maxout(3)(x), [[3.0, 0.5]])
    np.testing.assert_array_equal(Maxout(2)(x), [[1.0, 3.0, 0.25]])
    # In D: each hidden layer is a dense layer of width * pieces followed by the max over pieces.
    step = train_step([*MLP, "model.d_maxout=5", "model.d_hidden=[3,3]"], POINTS)
    layers = [layer for layer in step.gan.discriminator.layers if isinstance(layer, keras.layers.Dense)]
    assert [layer.units for layer in layers] == [15, 15, 1]
    first = layers[0](POINTS[:4]).numpy().reshape(4, 3, 5).max(axis=2)
    hidden = keras.Model(step.gan.discriminator.input, step.gan.discriminator.layers[3].output)
    np.testing.assert_allclose(hidden(POINTS[:4]), first, rtol=1e-6)


def test_generator_batchnorm_normalises_before_each_activation():
    step = train_step([*MLP, "model.g_batchnorm=true"], POINTS)
    kinds = [type(layer).__name__ for layer in step.gan.generator.layers[1:]]
    assert kinds == ["Dense", "BatchNormalization", "LeakyReLU"] * 2 + ["Dense", "Reshape"]
    hidden = [layer for layer in step.gan.generator.layers if isinstance(layer, keras.layers.Dense)][:-1]
    assert all(not layer.use_bias for layer in hidden)  # batch norm's beta is the shift


PACGAN = [
    *MLP,
    "loss=wgan_gp",
    "model.g_batchnorm=true",
    "model.d_maxout=3",
    "model.negative_slope=0",
    "train.pack=2",
    "train.n_critic=2",
    "train.beta2=0.999",
]


def test_mirrored_packed_step_equals_default_step():
    keras.utils.set_random_seed(0)
    results = []
    for strategy in (
        tf.distribute.get_strategy(),
        STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})),
    ):
        gan, step = build_step(PACGAN, POINTS, strategy)
        metrics = {k: float(v) for k, v in step(3).items()}
        results.append((metrics, gan.generator.get_weights() + gan.discriminator.get_weights()))
    assert_same_step(*results)


def test_a_pack_must_fit_in_each_replica_s_share_of_the_batch():
    mirrored = STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}))
    with pytest.raises(ConfigError, match="train.pack: must divide each replica's share of the batch"):
        train_step([*MLP, "train.pack=8"], POINTS, mirrored)


def test_resume_of_a_packed_run_is_bitwise(tmp_path, make_cfg):
    options = [
        *PACGAN,
        "dataset=ring8",
        "dataset.num_points=256",
        "train.checkpoint_every=3",
        "train.sample_every=100",
        "train.log_every=1",
    ]
    assert_same_state(*straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=3))


@pytest.mark.parametrize("preset, dataset", [("pacgan_grid25", "grid25"), ("pacgan_ring8", "ring8")])
def test_pacgan_presets_are_the_published_setup_layer_by_layer(preset, dataset):
    """fjxmlzn/PacGAN synthetic_data_experiments: G 4x400 (no bias) + BN + ReLU -> linear 2; D 3x200
    maxout-5 -> linear 1; Adam 1e-4, beta1 0.8; batch 100; the GAN loss, G non-saturating."""
    cfg = api.compose([f"experiment={preset}"])
    assert (cfg.dataset.name, cfg.loss.name, cfg.loss.penalty, cfg.get("aux")) == (dataset, "nsgan", "none", None)
    assert (cfg.train.batch_size, cfg.train.n_critic, cfg.train.g_lr, cfg.train.d_lr, cfg.train.beta1) == (
        100,
        1,
        1e-4,
        1e-4,
        0.8,
    )
    gan = build_gan(cfg, (2,))
    g_layers = [(type(layer).__name__, getattr(layer, "units", None)) for layer in gan.generator.layers[1:]]
    assert g_layers == [("Dense", 400), ("BatchNormalization", None), ("LeakyReLU", None)] * 4 + [
        ("Dense", 2),
        ("Reshape", None),
    ]
    assert all(layer.negative_slope == 0 for layer in gan.generator.layers if isinstance(layer, keras.layers.LeakyReLU))
    d_layers = [
        (type(layer).__name__, getattr(layer, "units", getattr(layer, "pieces", None)))
        for layer in gan.discriminator.layers[2:]
    ]
    assert d_layers == [("Dense", 1000), ("Maxout", 5)] * 3 + [("Dense", 1)]
    trainable = lambda model: sum(int(np.prod(w.shape)) for w in model.trainable_weights)  # noqa: E731
    assert trainable(gan.generator) == 2 * 400 + 4 * 2 * 400 + 3 * 400 * 400 + 400 * 2 + 2  # BN: gamma, beta
    assert trainable(gan.discriminator) == 3 * 1000 + 2 * (200 * 1000 + 1000) + 201
    kernel = gan.discriminator.layers[4].kernel.numpy()  # N(0, 0.02^2)
    assert abs(kernel.std() - 0.02) < 0.001 and not gan.discriminator.layers[4].bias.numpy().any()
