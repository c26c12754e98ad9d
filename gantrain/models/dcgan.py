"""DCGAN (Radford et al. 2016) in the WGAN-GP paper's form, for square images of any size >= 8.

Generator: Dense -> 4x4xC (see ``feature_sizes``) -> [BN, ReLU, stride-2 transposed conv] per doubling,
halving the channels -> tanh, as WGAN-GP's ``gan_cifar.py`` (and ``gan_mnist.py``). Where a size
is odd on the way down (28 -> 14 -> 7 -> 4), the upsampled map is cropped back (8 -> 7), as in the
WGAN-GP MNIST model. Discriminator: stride-2 convs doubling the channels with LeakyReLU, then one
logit; no normalisation, since a gradient penalty is per example.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import layers

from gantrain.models import MODELS, square_images
from gantrain.models.conditioning import (
    ConditionalBatchNorm,
    discriminator_model,
    label_input,
    with_class_embedding,
)
from gantrain.models.spectral_norm import conv2d, dense


def feature_sizes(size: int) -> list[int]:
    """Spatial sizes up to ``size``, each twice (or twice minus one) the previous, from the
    smallest that is still >= 4: 4 for powers of two and 28, 6 for 48."""
    sizes = [size]
    while (sizes[-1] + 1) // 2 >= 4:
        sizes.append((sizes[-1] + 1) // 2)
    return sizes[::-1]


@MODELS.register("dcgan")
def dcgan(
    data_shape: tuple[int, ...],
    z_dim: int = 128,
    g_channels: int = 64,
    d_channels: int = 64,
    kernel_size: int = 5,
    g_batchnorm: bool = True,
    negative_slope: float = 0.2,
    d_spectral_norm: bool = False,
    conditional: bool = False,
    d_projection: bool = True,
    num_classes: int = 0,
    class_head: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """G: z (B, z_dim) -> images (B, H, W, C) in [-1, 1]; D: images -> logit (B, 1).

    ``g_channels`` is G's width before its last layer (doubling towards 4x4); ``d_channels`` is
    D's first width (doubling towards 4x4); ``d_spectral_norm``: spectral normalization on every
    layer of D; ``conditional``: G and D take class labels of ``num_classes`` classes (G:
    class-conditional batch norm, or a class embedding beside z without batch norm; D: the
    projection term when ``d_projection``; ``class_head``: ACGAN's class logits).
    """
    height, channels = square_images(
        "dcgan", data_shape, z_dim=z_dim, g_channels=g_channels, d_channels=d_channels, kernel_size=kernel_size
    )
    sizes = feature_sizes(height)
    ups = len(sizes) - 1
    conv: dict[str, Any] = dict(kernel_size=kernel_size, strides=2, padding="same")

    z = keras.Input((z_dim,))
    y = label_input() if conditional else None
    width_g = g_channels * 2 ** (ups - 1)
    start = sizes[0]
    g_in = with_class_embedding(z, y, num_classes) if y is not None and not g_batchnorm else z
    h = layers.Dense(start * start * width_g, use_bias=not g_batchnorm)(g_in)
    h = layers.Reshape((start, start, width_g))(h)
    for i, size in enumerate(sizes[1:]):
        last = i == ups - 1
        # BN + ReLU before every transposed conv, the last included (WGAN-GP's gan_mnist.py and
        # gan_cifar.py): without it the last two convs compose to one linear map.
        h = _normalize_relu(h, g_batchnorm, y, num_classes)
        h = layers.Conv2DTranspose(
            channels if last else width_g // 2 ** (i + 1), **conv, use_bias=last or not g_batchnorm
        )(h)
        if 2 * sizes[i] > size:
            h = layers.Cropping2D(((0, 1), (0, 1)))(h)
    # Outputs in float32 under mixed precision too: losses and penalties are computed in float32.
    generator = keras.Model(z if y is None else [z, y], layers.Activation("tanh", dtype="float32")(h), name="generator")

    x = keras.Input(data_shape)
    h = x
    for i in range(ups):
        h = layers.LeakyReLU(negative_slope)(conv2d(d_channels * 2**i, spectral_norm=d_spectral_norm, **conv)(h))
    features = layers.Flatten()(h)
    logit = dense(1, spectral_norm=d_spectral_norm, dtype="float32")(features)
    discriminator = discriminator_model(
        x, features, logit, y is not None, num_classes, d_projection, class_head, d_spectral_norm
    )
    return generator, discriminator


def _normalize_relu(h, batchnorm: bool, y=None, classes: int = 0):
    if batchnorm and y is not None:  # a scale and shift per class
        h = ConditionalBatchNorm(classes, momentum=0.9)([h, y])
    elif batchnorm:
        # momentum 0.9 (PyTorch's 0.1): moving statistics that keep up with a changing G, so
        # previews drawn in inference mode look like training-mode outputs early on.
        # Under a multi-replica strategy the statistics are per replica, as usual in tf.distribute.
        h = layers.BatchNormalization(momentum=0.9)(h)
    return layers.ReLU()(h)
