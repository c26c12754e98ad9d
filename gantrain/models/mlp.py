"""The MLP GAN: fully connected generator and discriminator with LeakyReLU hidden layers.

Works on any example shape: images are flattened for D and reshaped (tanh, [-1, 1]) from G;
2-D points get a linear output, since the toy mixtures reach beyond [-1, 1].

PacGAN's toy networks (Lin et al. 2018, after ALI's) are options of the same model: batch norm
before each of G's activations (``g_batchnorm``) and maxout units in D (``d_maxout`` pieces).
"""

from __future__ import annotations

import math

import keras
import tensorflow as tf
from keras import layers

from gantrain.errors import ConfigError
from gantrain.models import MODELS
from gantrain.models.conditioning import (
    discriminator_model,
    label_input,
    with_class_embedding,
)
from gantrain.models.spectral_norm import dense


@MODELS.register("mlp", xla_on_cpu=True)
def mlp(
    data_shape: tuple[int, ...],
    z_dim: int = 100,
    g_hidden: list[int] = [1024, 1024, 1024],  # noqa: B006  config default, copied per run
    d_hidden: list[int] = [1024, 1024, 1024],  # noqa: B006  config default, copied per run
    negative_slope: float = 0.2,
    d_spectral_norm: bool = False,
    g_batchnorm: bool = False,
    d_maxout: int = 1,
    init_std: float | None = None,
    conditional: bool = False,
    d_projection: bool = True,
    num_classes: int = 0,
    class_head: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """G: z (B, z_dim) -> x (B, *data_shape); D: x -> logit (B, 1); ``d_spectral_norm``: spectral
    normalization on every layer of D; ``g_batchnorm``: batch norm before each of G's hidden
    activations; ``d_maxout``: pieces of each maxout unit of D's hidden layers (1: LeakyReLU);
    ``init_std``: weights drawn from N(0, init_std^2) (PacGAN: 0.02) instead of Keras's Glorot;
    ``conditional``: G and D take class labels of ``num_classes`` classes (G: a class embedding
    beside z; D: the projection term when ``d_projection``; ``class_head``: ACGAN's class logits,
    ``gantrain.models.conditioning``)."""
    _check_options(z_dim, d_maxout, init_std, g_hidden, d_hidden)
    # A fresh initializer per layer: Keras reuses an unseeded initializer's values.
    init = lambda: {} if init_std is None else {"kernel_initializer": keras.initializers.RandomNormal(stddev=init_std)}  # noqa: E731
    size = math.prod(data_shape)
    is_image = len(data_shape) == 3

    z = keras.Input((z_dim,))
    y = label_input() if conditional else None
    h = z if y is None else with_class_embedding(z, y, num_classes)
    for width in g_hidden:
        h = layers.Dense(width, use_bias=not g_batchnorm, **init())(h)  # batch norm's shift is the bias
        if g_batchnorm:
            # Statistics of the global batch under a strategy, so a mirrored step is the default one.
            h = layers.BatchNormalization(momentum=0.9, synchronized=True)(h)
        h = layers.LeakyReLU(negative_slope)(h)
    # Outputs in float32 under mixed precision too: losses and penalties are computed in float32.
    out = layers.Dense(size, activation="tanh" if is_image else None, dtype="float32", **init())(h)
    generator = keras.Model(z if y is None else [z, y], layers.Reshape(data_shape)(out), name="generator")

    x = keras.Input(data_shape)
    h = layers.Flatten()(x)
    for width in d_hidden:
        if d_maxout > 1:
            h = Maxout(d_maxout)(dense(width * d_maxout, spectral_norm=d_spectral_norm, **init())(h))
        else:
            h = layers.LeakyReLU(negative_slope)(dense(width, spectral_norm=d_spectral_norm, **init())(h))
    logit = dense(1, spectral_norm=d_spectral_norm, dtype="float32", **init())(h)
    discriminator = discriminator_model(
        x, h, logit, y is not None, num_classes, d_projection, class_head, d_spectral_norm
    )
    return generator, discriminator


def _check_options(z_dim: int, d_maxout: int, init_std: float | None, g_hidden: list[int], d_hidden: list[int]) -> None:
    """A ConfigError naming the first of :func:`mlp`'s options out of range."""
    if z_dim < 1:
        raise ConfigError("model.z_dim", f"must be >= 1, got {z_dim}")
    if d_maxout < 1:
        raise ConfigError("model.d_maxout", f"must be >= 1 (1: LeakyReLU units), got {d_maxout}")
    if init_std is not None and init_std <= 0:
        raise ConfigError("model.init_std", f"must be > 0 (or null: Glorot), got {init_std}")
    for key, sizes in (("g_hidden", g_hidden), ("d_hidden", d_hidden)):
        if not sizes or min(sizes) < 1:
            raise ConfigError(f"model.{key}", f"needs one or more layer sizes >= 1, got {sizes}")


@keras.saving.register_keras_serializable("gantrain")
class Maxout(layers.Layer):
    """Maxout units (Goodfellow et al. 2013): the largest of each unit's ``pieces`` linear outputs.
    Input (B, units * pieces), unit i's pieces at i * pieces ... i * pieces + pieces - 1 -> (B, units)."""

    def __init__(self, pieces: int, **kwargs):
        super().__init__(**kwargs)
        self.pieces = pieces

    def call(self, x):
        return tf.reduce_max(tf.reshape(x, [-1, x.shape[-1] // self.pieces, self.pieces]), axis=-1)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // self.pieces)

    def get_config(self):
        return {**super().get_config(), "pieces": self.pieces}
