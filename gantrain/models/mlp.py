"""The MLP GAN: fully connected generator and discriminator with LeakyReLU hidden layers.

Works on any example shape: images are flattened for D and reshaped (tanh, [-1, 1]) from G;
2-D points get a linear output, since the toy mixtures reach beyond [-1, 1].
"""

from __future__ import annotations

import math

import keras
from keras import layers

from gantrain.errors import ConfigError
from gantrain.models import MODELS
from gantrain.models.spectral_norm import dense


@MODELS.register("mlp")
def mlp(
    data_shape: tuple[int, ...],
    z_dim: int = 100,
    g_hidden: list[int] = [1024, 1024, 1024],
    d_hidden: list[int] = [1024, 1024, 1024],
    negative_slope: float = 0.2,
    d_spectral_norm: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """G: z (B, z_dim) -> x (B, *data_shape); D: x -> logit (B, 1); ``d_spectral_norm``: spectral
    normalization on every layer of D."""
    if z_dim < 1:
        raise ConfigError("model.z_dim", f"must be >= 1, got {z_dim}")
    for key, sizes in (("g_hidden", g_hidden), ("d_hidden", d_hidden)):
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"model.{key}", f"needs one or more layer sizes >= 1, got {sizes}")
    size = math.prod(data_shape)
    is_image = len(data_shape) == 3

    z = keras.Input((z_dim,))
    h = z
    for width in g_hidden:
        h = layers.LeakyReLU(negative_slope)(layers.Dense(width)(h))
    # Outputs in float32 under mixed precision too: losses and penalties are computed in float32.
    out = layers.Dense(size, activation="tanh" if is_image else None, dtype="float32")(h)
    generator = keras.Model(z, layers.Reshape(data_shape)(out), name="generator")

    x = keras.Input(data_shape)
    h = layers.Flatten()(x)
    for width in d_hidden:
        h = layers.LeakyReLU(negative_slope)(dense(width, spectral_norm=d_spectral_norm)(h))
    logit = dense(1, spectral_norm=d_spectral_norm, dtype="float32")(h)
    discriminator = keras.Model(x, logit, name="discriminator")
    return generator, discriminator
