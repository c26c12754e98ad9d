"""Every architecture on every example shape it supports, and one-line errors for the rest."""

import keras
import numpy as np
import pytest
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.models import MODELS
from gantrain.models.dcgan import feature_sizes

SHAPES = {
    "mlp": [(2,), (28, 28, 1), (32, 32, 3), (64, 64, 3)],
    "dcgan": [(28, 28, 1), (32, 32, 3), (48, 48, 3), (64, 64, 3)],
    "resnet": [(8, 8, 1), (28, 28, 1), (32, 32, 3), (48, 48, 3)],
    "r3gan": [(8, 8, 1), (28, 28, 1), (32, 32, 3), (64, 64, 3)],
}
SMALL = {
    "mlp": {"g_hidden": [8, 8], "d_hidden": [8]},
    "dcgan": {"g_channels": 4, "d_channels": 4},
    "resnet": {"g_channels": 4, "d_channels": 4},
    "r3gan": {"widths": [4, 4, 4, 4, 4], "blocks": [1, 1, 1, 1, 1], "cardinality": [2, 2, 2, 2, 2]},
}


@pytest.mark.parametrize("spectral_norm", [False, True], ids=["plain", "sn"])
@pytest.mark.parametrize("name, shape", [(m, s) for m in SHAPES for s in SHAPES[m]])
def test_generator_and_discriminator_shapes(name, shape, spectral_norm):
    node = OmegaConf.create({"name": name, "z_dim": 6, "d_spectral_norm": spectral_norm, **SMALL[name]})
    generator, discriminator = MODELS.build(node, data_shape=shape)
    fake = generator(np.zeros((3, 6), np.float32), training=False)
    assert tuple(fake.shape) == (3, *shape)
    assert tuple(discriminator(fake).shape) == (3, 1)
    if len(shape) == 3:  # images come out in the data's range
        assert np.abs(fake.numpy()).max() <= 1.0


def test_default_mlp_is_three_hidden_layers_of_1024():
    generator, discriminator = MODELS.build(OmegaConf.create({"name": "mlp"}), data_shape=(2,))
    widths = [layer.units for layer in generator.layers if hasattr(layer, "units")]
    assert widths == [1024, 1024, 1024, 2]
    assert [layer.units for layer in discriminator.layers if hasattr(layer, "units")] == [1024, 1024, 1024, 1]


def test_dcgan_generator_starts_at_4x4_and_halves_channels():
    node = OmegaConf.create({"name": "dcgan", "g_channels": 8})
    generator, _ = MODELS.build(node, data_shape=(32, 32, 3))
    maps = [tuple(layer.output.shape[1:]) for layer in generator.layers if "conv2d_transpose" in layer.name]
    reshape = [layer for layer in generator.layers if "reshape" in layer.name][0]
    assert tuple(reshape.output.shape[1:]) == (4, 4, 32)
    assert maps == [(8, 8, 16), (16, 16, 8), (32, 32, 3)]


@pytest.mark.parametrize(
    "size, sizes",
    [(28, [4, 7, 14, 28]), (32, [4, 8, 16, 32]), (64, [4, 8, 16, 32, 64]), (48, [6, 12, 24, 48]), (9, [5, 9])],
)
def test_feature_sizes(size, sizes):
    assert feature_sizes(size) == sizes


def test_dcgan_on_points_is_a_one_line_error():
    with pytest.raises(ConfigError, match=r"^model: dcgan needs images .* use model=mlp$"):
        MODELS.build(OmegaConf.create({"name": "dcgan"}), data_shape=(2,))


def test_dcgan_needs_square_images():
    with pytest.raises(ConfigError, match="square images"):
        MODELS.build(OmegaConf.create({"name": "dcgan"}), data_shape=(28, 32, 1))


def test_build_models_in_mixed_precision_keeps_float32_outputs():
    import keras

    from gantrain.models import build_models

    node = OmegaConf.create({"name": "dcgan", "z_dim": 4, **SMALL["dcgan"]})
    generator, discriminator = build_models(node, (28, 28, 1), "mixed_bfloat16")
    assert {layer.compute_dtype for layer in generator.layers if "conv2d_transpose" in layer.name} == {"bfloat16"}
    fake = generator(np.zeros((2, 4), np.float32))
    assert fake.dtype == "float32" and discriminator(fake).dtype == "float32"
    assert keras.mixed_precision.global_policy().name == "float32"  # nothing leaks to later models


def test_resnet_follows_the_cifar_layout():
    """32x32: G up 4 -> 8 -> 16 -> 32; D 32 -> 16 -> 8, then two blocks at 8x8 (SNGAN, WGAN-GP)."""
    node = OmegaConf.create({"name": "resnet", "g_channels": 8, "d_channels": 8})
    generator, discriminator = MODELS.build(node, data_shape=(32, 32, 3))
    ups = [layer.output.shape[1] for layer in generator.layers if type(layer).__name__ == "Add"]
    assert ups == [8, 16, 32]
    adds = [layer.output.shape[1] for layer in discriminator.layers if type(layer).__name__ == "Add"]
    assert adds == [16, 8, 8, 8]


def test_resnet_g_batchnorm_switch():
    node = OmegaConf.create({"name": "resnet", "g_channels": 4, "d_channels": 4, "g_batchnorm": False})
    generator, _ = MODELS.build(node, data_shape=(8, 8, 1))
    assert not any(type(layer).__name__ == "BatchNormalization" for layer in generator.layers)
    generator, _ = MODELS.build(OmegaConf.merge(node, {"g_batchnorm": True}), data_shape=(8, 8, 1))
    assert any(type(layer).__name__ == "BatchNormalization" for layer in generator.layers)


@pytest.mark.parametrize("name", ["mlp", "dcgan", "resnet", "r3gan"])
def test_spectral_norm_wraps_every_discriminator_layer_with_weights(name):
    node = OmegaConf.create({"name": name, "d_spectral_norm": True, **SMALL[name]})
    _, discriminator = MODELS.build(node, data_shape=(8, 8, 1))
    weighted = [layer for layer in discriminator.layers if layer.trainable_weights]
    assert weighted and all(type(layer).__name__ in ("SNDense", "SNConv2D") for layer in weighted)


def layer_kinds(model) -> list[str]:
    return [type(layer).__name__ for layer in model.layers[1:]]


@pytest.mark.parametrize(
    "size, kinds",
    [
        (
            28,
            [
                "Dense",
                "Reshape",
                "BatchNormalization",
                "ReLU",
                "Conv2DTranspose",
                "Cropping2D",
                "BatchNormalization",
                "ReLU",
                "Conv2DTranspose",
                "BatchNormalization",
                "ReLU",
                "Conv2DTranspose",
                "Activation",
            ],
        ),
        (8, ["Dense", "Reshape", "BatchNormalization", "ReLU", "Conv2DTranspose", "Activation"]),
    ],
)
def test_dcgan_generator_has_batch_norm_and_relu_before_every_transposed_conv(size, kinds):
    """As WGAN-GP's gan_cifar.py / gan_mnist.py: no two transposed convs back to back."""
    node = OmegaConf.create({"name": "dcgan", "z_dim": 6, **SMALL["dcgan"]})
    generator, _ = MODELS.build(node, data_shape=(size, size, 1))
    assert layer_kinds(generator) == kinds
    plain, _ = MODELS.build(OmegaConf.merge(node, {"g_batchnorm": False}), data_shape=(size, size, 1))
    assert layer_kinds(plain) == [kind for kind in kinds if kind != "BatchNormalization"]


@pytest.mark.parametrize("size", [8, 28, 32])
def test_dcgan_generator_is_not_affine_before_its_tanh(size):
    """atanh G(z1 + z2) - atanh G(z1) - atanh G(z2) + atanh G(0) is 0 for an affine map under the tanh."""
    keras.utils.set_random_seed(0)
    node = OmegaConf.create({"name": "dcgan", "z_dim": 6, **SMALL["dcgan"]})
    generator, _ = MODELS.build(node, data_shape=(size, size, 1))
    z1, z2 = np.random.default_rng(0).normal(size=(2, 4, 6)).astype(np.float32)
    pre = lambda z: np.arctanh(np.clip(generator(z, training=False).numpy().astype(np.float64), -0.999999, 0.999999))  # noqa: E731
    interaction = pre(z1 + z2) - pre(z1) - pre(z2) + pre(np.zeros_like(z1))
    assert np.abs(interaction).max() > 0.05 * np.abs(pre(z1)).max()


def test_resnet_critic_pools_by_sum_or_mean():
    """sum (SNGAN) is the mean (WGAN-GP) times the 8x8 positions, before the last layer's bias."""
    node = OmegaConf.create({"name": "resnet", **SMALL["resnet"]})
    _, summed = MODELS.build(node, data_shape=(32, 32, 3))
    _, averaged = MODELS.build(OmegaConf.merge(node, {"d_pooling": "mean"}), data_shape=(32, 32, 3))
    averaged.set_weights(summed.get_weights())
    bias = summed.layers[-1].bias.numpy()
    x = np.random.default_rng(0).uniform(-1, 1, (3, 32, 32, 3)).astype(np.float32)
    np.testing.assert_allclose(summed(x).numpy() - bias, 64 * (averaged(x).numpy() - bias), rtol=1e-4, atol=1e-5)
    with pytest.raises(ConfigError, match="^model.d_pooling"):
        MODELS.build(OmegaConf.merge(node, {"d_pooling": "max"}), data_shape=(32, 32, 3))
