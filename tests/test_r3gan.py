"""model=r3gan: shapes, the identity start of its residual blocks, the resampling filter against
a hand computation, parameter counts, the 28x28 build, errors, and training steps."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain import api
from gantrain.errors import ConfigError
from gantrain.models import MODELS, build_models
from gantrain.models.conditioning import Projection
from gantrain.models.r3gan import GenerativeBasis
from gantrain.models.resample import Downsample, Upsample, lowpass_kernel
from tests.conftest import TINY, build_step, fake_images, gantrain_in_process, snapshot
from tests.test_conditional import conditional_step

NODE = {
    "name": "r3gan",
    "z_dim": 4,
    "widths": [4, 2, 2, 2, 2],
    "blocks": [1, 2, 1, 1, 1],
    "cardinality": [2, 1, 2, 2, 2],
}


def build(shape, **changes):
    keras.utils.set_random_seed(0)
    return MODELS.build(OmegaConf.create({**NODE, **changes}), data_shape=shape)


@pytest.mark.parametrize("shape", [(8, 8, 1), (16, 16, 3), (32, 32, 3), (28, 28, 1)])
def test_shapes(shape):
    generator, discriminator = build(shape)
    fake = generator(np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32))
    assert tuple(fake.shape) == (2, *shape) and tuple(discriminator(fake).shape) == (2, 1)
    basis = next(layer for layer in generator.layers if isinstance(layer, GenerativeBasis))
    assert tuple(basis.output.shape) == (None, 4, 4, 4)


def test_28x28_is_the_centre_of_32x32_and_d_pads_with_black():
    """Same seed, same weights: G's 28x28 image is the 32x32 one without 2 pixels a side; D of a
    28x28 image is D of that image framed in -1."""
    g28, d28 = build((28, 28, 1))
    g32, d32 = build((32, 32, 1))
    z = np.random.default_rng(1).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_allclose(g28(z), g32(z)[:, 2:30, 2:30], atol=1e-6)
    x = np.random.default_rng(2).uniform(-1, 1, (3, 28, 28, 1)).astype(np.float32)
    framed = np.pad(x, [(0, 0), (2, 2), (2, 2), (0, 0)], constant_values=-1.0)
    np.testing.assert_allclose(d28(x), d32(framed), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain", "sn"])
def test_every_residual_block_starts_as_the_identity(spectral_norm):
    generator, discriminator = build((16, 16, 3), d_spectral_norm=spectral_norm)
    z = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    x = np.random.default_rng(1).uniform(-1, 1, (2, 16, 16, 3)).astype(np.float32)
    models = [(generator, z)] if spectral_norm else [(generator, z), (discriminator, x)]
    for model, inputs in models:
        adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
        assert len(adds) == 4  # one per block: 1 + 2 + 1 blocks at 4x4, 8x8, 16x16
        probe = keras.Model(model.inputs, [t for add in adds for t in (add.input[0], add.output)])
        values = probe(inputs)
        for before, after in zip(values[::2], values[1::2], strict=True):
            np.testing.assert_array_equal(before, after)
    if spectral_norm:  # a zero kernel has no spectral norm: D's branches start from the usual draw
        adds = [layer for layer in discriminator.layers if isinstance(layer, keras.layers.Add)]
        probe = keras.Model(discriminator.inputs, [adds[0].input[0], adds[0].output])
        before, after = probe(x)
        assert np.isfinite(after).all() and not np.allclose(before, after)


def test_the_resampling_kernel_is_1_3_3_1_squared():
    row = np.array([1, 3, 3, 1]) / 8
    np.testing.assert_allclose(lowpass_kernel([1, 2, 1]), np.outer(row, row), rtol=1e-7)


def test_upsampling_by_hand():
    """Separable input a b^T -> (U a)(U b)^T, U from zero insertion, padding (2, 1) and the taps
    2 * [1, 3, 3, 1] / 8 along each axis."""
    a, b = np.array([1.0, 5.0]), np.array([2.0, -4.0])

    def up(v):
        return np.array([3 * v[0], 3 * v[0] + v[1], v[0] + 3 * v[1], 3 * v[1]]) / 4

    x = np.outer(a, b)[None, :, :, None].astype(np.float32)
    np.testing.assert_allclose(Upsample([1, 2, 1])(x)[0, :, :, 0], np.outer(up(a), up(b)), rtol=1e-6)
    constant = Upsample([1, 2, 1])(np.ones((1, 4, 4, 2), np.float32))
    np.testing.assert_allclose(constant[0, 1:-1, 1:-1], 1.0, rtol=1e-6)  # away from the zero border


def test_downsampling_by_hand():
    """Separable input a b^T -> (D a)(D b)^T, D from padding (1, 1) and the taps [1, 3, 3, 1] / 8, stride 2."""
    a, b = np.array([1.0, 2.0, 3.0, 4.0]), np.array([-1.0, 0.0, 2.0, 5.0])

    def down(v):
        return np.array([3 * v[0] + 3 * v[1] + v[2], v[1] + 3 * v[2] + 3 * v[3]]) / 8

    x = np.outer(a, b)[None, :, :, None].astype(np.float32)
    x = np.concatenate([x, 2 * x], axis=-1)  # each channel on its own
    out = Downsample([1, 2, 1])(x)
    np.testing.assert_allclose(out[0, :, :, 0], np.outer(down(a), down(b)), rtol=1e-6)
    np.testing.assert_allclose(out[0, :, :, 1], 2 * np.outer(down(a), down(b)), rtol=1e-6)


def block(width: int, groups: int, expansion: int = 2, k: int = 3) -> int:
    inner = width * expansion
    return (width * inner + inner) + (k * k * inner // groups * inner + inner) + inner * width


def test_parameter_counts_by_hand():
    """z 4, widths [4, 2], one block per stage, groups [2, 1], 8x8 greyscale."""
    generator, discriminator = build((8, 8, 1), widths=[4, 2], blocks=[1, 1], cardinality=[2, 1])
    assert block(4, 2) == 368 and block(2, 1) == 168
    # z -> 4 (16), the 4x4x4 basis, block, 1x1 4 -> 2, block, 1x1 2 -> 1.
    assert generator.count_params() == 16 + 64 + 368 + 8 + 168 + 2
    # 1x1 1 -> 2, block, 1x1 2 -> 4, block, the depthwise 4x4 basis, 4 -> 1.
    assert discriminator.count_params() == 2 + 168 + 8 + 368 + 64 + 4


def test_initial_scales():
    """Weights N(0, (gain / sqrt(fan_in))^2): gain 1 outside the blocks, sqrt(2 / 1.04) * L^(-1/4) in them."""
    generator, _ = build((16, 16, 3), widths=[64, 64, 64], blocks=[2, 2, 2], cardinality=[8, 8, 8], expansion=2)
    convs = [layer for layer in generator.layers if isinstance(layer, keras.layers.Conv2D)]
    first, grouped = convs[0].kernel.numpy(), convs[1].kernel.numpy()
    gain = math.sqrt(2 / 1.04) * 6**-0.25
    assert first.std() == pytest.approx(gain / math.sqrt(64), rel=0.05)
    assert grouped.std() == pytest.approx(gain / math.sqrt(9 * 128 / 8), rel=0.05)
    assert not convs[0].bias.numpy().any() and not convs[2].kernel.numpy().any()


def grouped_conv_by_hand(layer, x, kernel):
    """The definition of a grouped conv: group g's filters see only group g's input channels."""
    inputs, outputs = kernel.shape[2], kernel.shape[3] // layer.groups
    return tf.concat(
        [
            tf.nn.conv2d(
                x[..., g * inputs : (g + 1) * inputs],
                kernel[..., g * outputs : (g + 1) * outputs],
                layer.strides,
                layer.padding.upper(),
            )
            for g in range(layer.groups)
        ],
        axis=-1,
    )


def outputs_and_gradients(model, inputs):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        out = model(inputs, training=False)
        loss = tf.reduce_sum(out * tf.sin(tf.reshape(tf.range(tf.size(out), dtype=out.dtype), out.shape)))
    return [out, *tape.gradient(loss, [inputs, *model.trainable_weights])]


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain", "sn"])
def test_grouped_convs_compute_the_per_group_convolutions(spectral_norm):
    """G's and D's outputs and gradients (input and weights) as with every grouped conv (the blocks'
    k x k convs, D's depthwise basis) computed group by group with tf.nn.conv2d; weights drawn at
    random so that no zero-started conv hides a block."""
    rng = np.random.default_rng(0)
    for model, inputs in zip(
        build((16, 16, 3), d_spectral_norm=spectral_norm),
        [tf.constant(rng.normal(size=(2, 4)), tf.float32), tf.constant(rng.uniform(-1, 1, (2, 16, 16, 3)), tf.float32)],
        strict=True,
    ):
        for weight in model.trainable_weights:
            weight.assign(rng.normal(0, 0.5, weight.shape).astype(np.float32))
        grouped = [layer for layer in model.layers if getattr(layer, "groups", 1) > 1]
        assert grouped
        ours = outputs_and_gradients(model, inputs)
        for layer in grouped:
            layer.convolution_op = lambda x, kernel, layer=layer: grouped_conv_by_hand(layer, x, kernel)
        by_hand = outputs_and_gradients(model, inputs)
        for a, b in zip(ours, by_hand, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5 * float(tf.reduce_max(tf.abs(b))))


def test_grouped_convs_compile_without_xla_on_a_cpu():
    """Keras's grouped Conv2D compiles with XLA, whose CPU gradients of a grouped conv are many times
    slower than the per-group convs; D's forward, backward and R1's double backward use none."""
    _, discriminator = build((16, 16, 3))
    x = tf.zeros((2, 16, 16, 3))

    @tf.function
    def penalty_gradients():
        with tf.GradientTape() as outer:
            with tf.GradientTape() as inner:
                inner.watch(x)
                score = tf.reduce_sum(discriminator(x, training=True))
            penalty = tf.reduce_sum(tf.square(inner.gradient(score, x)))
        return outer.gradient(penalty, discriminator.trainable_weights)

    graph = penalty_gradients.get_concrete_function().graph.as_graph_def()
    nodes = [*graph.node, *(node for function in graph.library.function for node in function.node_def)]
    compiled = [node.name for node in nodes if node.attr["_XlaMustCompile"].b]
    assert not compiled, compiled


@pytest.mark.parametrize(
    "shape, changes, key",
    [
        ((48, 48, 3), {}, "^model: r3gan needs square images of 8x8, 16x16, 32x32"),
        ((12, 12, 1), {}, "^model: r3gan needs"),
        ((64, 64, 3), {}, r"^model.widths: 64x64 images need 5 stages"),
        ((16, 16, 3), {"cardinality": [3, 3, 3]}, "^model.cardinality: 3 groups must divide"),
        ((16, 16, 3), {"blocks": [1, -1, 1]}, "^model.blocks: must be >= 0"),
    ],
)
def test_unsupported_sizes_and_settings_are_one_line(shape, changes, key):
    node = {**NODE, "widths": [4, 4, 4, 4], **changes}
    with pytest.raises(ConfigError, match=key) as error:
        MODELS.build(OmegaConf.create(node), data_shape=shape)
    assert "\n" not in str(error.value)


def test_bad_resolution_through_the_cli_is_one_line_and_writes_nothing(tmp_path, capfd, monkeypatch):
    images = tmp_path / "images"
    images.mkdir()
    for i, pixels in enumerate(fake_images(2, 48, 48, 3)):
        tf.io.write_file(str(images / f"{i}.png"), tf.io.encode_png(pixels))
    before = snapshot(tmp_path)
    code, _, stderr = gantrain_in_process(
        "model=r3gan",
        *TINY["r3gan"],
        "dataset=folder",
        f"dataset.path={images}",
        "dataset.resolution=48",
        "dataset.in_memory=true",
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    errors = [line for line in stderr.splitlines() if line.startswith("gantrain: error:")]
    assert code == 2 and len(errors) == 1 and errors[0].startswith("gantrain: error: model: r3gan needs"), stderr
    assert snapshot(tmp_path) == before


def test_one_training_step_with_the_r1_penalty():
    data = tf.constant(fake_images(16, 8, 8, 3))
    _, step = build_step(
        ["model=r3gan", *TINY["r3gan"], "loss=nsgan", "loss.penalty=r1", "train.batch_size=4", "train.n_critic=1"], data
    )
    metrics = {name: float(value) for name, value in step(1).items()}
    assert all(np.isfinite(v) for v in metrics.values()), metrics


def test_conditional_build_embeds_the_label_beside_z_and_projects_d_s_basis():
    node = api.compose(["model=r3gan", *TINY["r3gan"], "model.conditional=true"]).model
    keras.utils.set_random_seed(0)
    generator, discriminator = build_models(node, (16, 16, 3), num_classes=10)
    assert [i.shape[1:] for i in generator.inputs] == [(4,), ()] and len(discriminator.inputs) == 2
    embedding = generator.get_layer("class_embedding")
    assert embedding.output.shape[-1] == 4  # as wide as z
    projection = next(layer for layer in discriminator.layers if isinstance(layer, Projection))
    # The logit is the projection alone (no unconditional term), on features as wide as the 4x4 stage.
    assert discriminator.outputs[0] is projection.output and projection.input[0].shape[-1] == 4
    assert projection.embed.kernel.shape == (10, 4)
    fake = generator([np.zeros((3, 4), np.float32), np.arange(3, dtype=np.int32)])
    assert tuple(fake.shape) == (3, 16, 16, 3)
    assert tuple(discriminator([fake, tf.range(3)]).shape) == (3, 1)


def test_one_conditional_training_step_with_the_class_head():
    _, step = conditional_step(
        [
            "model=r3gan",
            *TINY["r3gan"],
            "model.conditional=true",
            "loss=hinge",
            "loss.aux_classifier=0.5",
            "train.batch_size=8",
            "train.n_critic=1",
        ]
    )
    metrics = {name: float(value) for name, value in step.compiled().items()}
    assert all(np.isfinite(v) for v in metrics.values()), metrics
