"""The CIFAR ResNet of WGAN-GP (Gulrajani et al. 2017) and SNGAN (Miyato et al. 2018), any square size >= 8.

Generator: Dense -> 4x4xC (see ``dcgan.feature_sizes``) -> residual up blocks (BN, ReLU, 2x nearest upsampling,
3x3 conv, BN, ReLU, 3x3 conv; 1x1-conv shortcut) until the image size (odd sizes are cropped, 8 -> 7, as in
``dcgan``) -> BN, ReLU, 3x3 conv, tanh.
Discriminator: an "optimized" first block (conv, ReLU, conv, 2x2 average pool; shortcut pool then
1x1 conv), residual down blocks until the maps are 8x8 or smaller, two plain residual blocks,
ReLU, global pooling, one logit. For 32x32: 32 -> 16 -> 8 -> 8 -> 8, as in the papers.

The pooling differs between the papers (``d_pooling``): SNGAN (Miyato et al. 2018, and its
projection discriminator) sums over the positions; WGAN-GP's ``gan_cifar_resnet.py`` averages
(``tf.reduce_mean`` over space), which scales the logit down by the number of positions.
"""

from __future__ import annotations

from enum import Enum

import keras
from keras import layers

from gantrain.models import MODELS, square_images
from gantrain.models.conditioning import (
    ConditionalBatchNorm,
    discriminator_model,
    label_input,
    with_class_embedding,
)
from gantrain.models.dcgan import feature_sizes
from gantrain.models.spectral_norm import conv2d, dense


class Pooling(Enum):
    sum = "sum"  # SNGAN
    mean = "mean"  # WGAN-GP


@MODELS.register("resnet")
def resnet(
    data_shape: tuple[int, ...],
    z_dim: int = 128,
    g_channels: int = 256,
    g_batchnorm: bool = True,
    d_channels: int = 128,
    d_spectral_norm: bool = False,
    d_pooling: Pooling = Pooling.sum,
    conditional: bool = False,
    d_projection: bool = True,
    num_classes: int = 0,
    class_head: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """G: z (B, z_dim) -> images (B, H, W, C) in [-1, 1]; D: images -> logit (B, 1).

    ``g_channels``/``d_channels``: the width of every block of G/D; ``g_batchnorm``: batch norm in
    G's blocks; ``d_spectral_norm``: spectral normalization on every layer of D; ``d_pooling``:
    how D's last features are pooled over space, ``sum`` (SNGAN) or ``mean`` (WGAN-GP);
    ``conditional``: G and D take class labels of ``num_classes`` classes (G: class-conditional
    batch norm in every block, the batch norm after the blocks shared as in SNGAN's code, or a
    class embedding beside z without batch norm; D: the projection term when ``d_projection``, as
    SNGAN's conditional ResNet; ``class_head``: ACGAN's class logits).
    """
    height, channels = square_images("resnet", data_shape, z_dim=z_dim, g_channels=g_channels, d_channels=d_channels)

    z = keras.Input((z_dim,))
    y = label_input() if conditional else None
    g_in = with_class_embedding(z, y, num_classes) if y is not None and not g_batchnorm else z
    sizes = feature_sizes(height)
    h = layers.Reshape((sizes[0], sizes[0], g_channels))(layers.Dense(sizes[0] ** 2 * g_channels)(g_in))
    label = (y, num_classes) if y is not None else None
    for size in sizes[1:]:
        h = _up_block(h, g_channels, g_batchnorm, crop=2 * h.shape[1] > size, label=label)
    # The batch norm after the blocks is unconditional in SNGAN's conditional generator too.
    h = layers.Conv2D(channels, 3, padding="same")(_bn_relu(h, g_batchnorm))
    # Outputs in float32 under mixed precision too: losses and penalties are computed in float32.
    generator = keras.Model(z if y is None else [z, y], layers.Activation("tanh", dtype="float32")(h), name="generator")

    def conv(filters: int, kernel_size: int):
        return conv2d(filters, kernel_size, spectral_norm=d_spectral_norm, padding="same")

    x = keras.Input(data_shape)
    pool = layers.AveragePooling2D(2, padding="same")
    # The optimized block: no ReLU in front of the first conv, which sees the image itself.
    main = pool(conv(d_channels, 3)(layers.ReLU()(conv(d_channels, 3)(x))))
    h = layers.Add()([main, conv(d_channels, 1)(pool(x))])
    while h.shape[1] > 8:
        main = conv(d_channels, 3)(layers.ReLU()(conv(d_channels, 3)(layers.ReLU()(h))))
        h = layers.Add()([pool(main), pool(conv(d_channels, 1)(h))])
    for _ in range(2):
        main = conv(d_channels, 3)(layers.ReLU()(conv(d_channels, 3)(layers.ReLU()(h))))
        h = layers.Add()([main, h])
    features = layers.GlobalAveragePooling2D()(layers.ReLU()(h))
    if Pooling(d_pooling) is Pooling.sum:
        features = layers.Rescaling(float(h.shape[1] * h.shape[2]))(features)  # the mean times the positions
    logit = dense(1, spectral_norm=d_spectral_norm, dtype="float32")(features)
    discriminator = discriminator_model(
        x, features, logit, y is not None, num_classes, d_projection, class_head, d_spectral_norm
    )
    return generator, discriminator


def _bn_relu(h, batchnorm: bool, label=None):
    """``label``: (y, classes) for class-conditional batch norm."""
    if batchnorm and label is not None:
        h = ConditionalBatchNorm(label[1], momentum=0.9)([h, label[0]])
    elif batchnorm:
        h = layers.BatchNormalization(momentum=0.9)(h)  # momentum: see dcgan._normalize_relu
    return layers.ReLU()(h)


def _up_block(h, channels: int, batchnorm: bool, crop: bool, label=None):
    """Upsample by 2 (cropped back by one pixel when ``crop``), residual."""
    up = layers.UpSampling2D(2)
    trim = layers.Cropping2D(((0, 1), (0, 1))) if crop else layers.Identity()
    main = trim(up(_bn_relu(h, batchnorm, label)))
    main = layers.Conv2D(channels, 3, padding="same")(main)
    main = layers.Conv2D(channels, 3, padding="same")(_bn_relu(main, batchnorm, label))
    shortcut = layers.Conv2D(channels, 1)(trim(up(h)))
    return layers.Add()([main, shortcut])
