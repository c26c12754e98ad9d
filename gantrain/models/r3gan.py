"""R3GAN (Huang et al., "The GAN is dead; long live the GAN! A Modern GAN Baseline", NeurIPS 2024).

Generator: a learned 4x4 basis (one 4x4 map per channel, N(0, 1)) scaled per channel by a linear
map of z; then one stage per doubling: a transition (1x1 conv when the width changes, then 2x
upsampling with the [1, 2, 1] filter, ``resample.Upsample``) and residual blocks; a 1x1 conv to
the image channels. Discriminator, the mirror image: a 1x1 conv from the image, per stage residual
blocks then a transition (2x downsampling, then a 1x1 conv when the width changes), and after the
4x4 stage the discriminative basis (a 4x4 depthwise conv to one value per channel) and a linear
map to the logit.

Residual block: x + conv1x1(act(conv_kxk_grouped(act(conv1x1(x))))), the inner width
``expansion`` times the block's, act = bias + LeakyReLU(0.2), no normalisation. Initialisation:
N(0, (gain / sqrt(fan_in))^2) for every weight (biases 0), with gain = sqrt(2 / (1 + 0.2^2)) * L^(-1/4)
inside the blocks (L: the blocks of the network, so the sum of L branches starts at a bounded
scale) and 1 elsewhere; each block's last conv starts at zero, so each block starts as the identity.

Sizes: 2^k x 2^k images (k >= 3) use the first k - 1 entries of the per-stage lists (4x4 first).
28x28 images (MNIST) are made at 32x32: G crops the centre 28x28, D pads its input back to 32x32
with -1 (black, the background of the digits).

Usage: ``G, D = MODELS.build(OmegaConf.create({"name": "r3gan"}), data_shape=(32, 32, 3))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import keras
from keras import layers

from gantrain.errors import ConfigError
from gantrain.models import MODELS, square_images
from gantrain.models.conditioning import (
    discriminator_model,
    label_input,
    with_class_embedding,
)
from gantrain.models.resample import Downsample, Upsample
from gantrain.models.spectral_norm import conv2d, dense

SLOPE = 0.2  # LeakyReLU slope of every block
ACTIVATION_GAIN = math.sqrt(2 / (1 + SLOPE**2))  # keeps the second moment through bias + LeakyReLU(0.2)
MNIST_SIZE, MNIST_BUILT = 28, 32  # 28x28 images are made at 32x32 and cropped


def msr(gain: float) -> keras.initializers.Initializer:
    """N(0, (gain / sqrt(fan_in))^2), fan_in = kernel height x width x input channels per group."""
    if gain == 0:
        return keras.initializers.Zeros()
    return keras.initializers.VarianceScaling(gain**2, "fan_in", "untruncated_normal")


@dataclass(frozen=True)
class Stages:
    """Per-stage settings from the 4x4 stage up, cut to the stages an image size needs."""

    widths: list[int]
    blocks: list[int]
    cardinality: list[int]
    expansion: int
    kernel_size: int
    taps: list[float]

    @property
    def block_gain(self) -> float:
        """Gain of the first two convs of every block: 3 linear layers per branch, sum(blocks) branches."""
        return ACTIVATION_GAIN * sum(self.blocks) ** (-1 / (2 * 3 - 2))


@keras.saving.register_keras_serializable("gantrain")
class GenerativeBasis(layers.Layer):
    """(B, C) -> (B, 4, 4, C): a learned 4x4 map per channel, scaled by the input's value there."""

    def build(self, input_shape):
        self.basis = self.add_weight(
            shape=(4, 4, input_shape[-1]), initializer=keras.initializers.RandomNormal(0.0, 1.0), name="basis"
        )

    def call(self, scales):
        return self.basis[None] * scales[:, None, None, :]

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4, 4, input_shape[-1])


@MODELS.register("r3gan")
def r3gan(
    data_shape: tuple[int, ...],
    z_dim: int = 64,
    widths: list[int] = [768, 768, 768, 768],  # noqa: B006  config default, copied per run
    blocks: list[int] = [2, 2, 2, 2],  # noqa: B006  config default, copied per run
    cardinality: list[int] = [96, 96, 96, 96],  # noqa: B006  config default, copied per run
    expansion: int = 2,
    kernel_size: int = 3,
    resampling_filter: list[float] = [1.0, 2.0, 1.0],  # noqa: B006  config default, copied per run
    g_tanh: bool = True,
    d_spectral_norm: bool = False,
    conditional: bool = False,
    d_projection: bool = True,
    num_classes: int = 0,
    class_head: bool = False,
) -> tuple[keras.Model, keras.Model]:
    """G: z (B, z_dim) -> images (B, H, W, C); D: images -> logit (B, 1).

    ``widths``/``blocks``/``cardinality``: per stage from 4x4 up, the channels, residual blocks and
    groups of the k x k conv (D uses the same stage at the same size); ``expansion``: inner width of
    a block over its width; ``kernel_size``: of the grouped conv; ``resampling_filter``: the taps
    of the up/downsampling filter; ``g_tanh``: tanh on G's output (R3GAN's is linear);
    ``d_spectral_norm``: on every layer of D (the zero start of each block's last conv then gives
    way to the other convs' initialisation, as a zero kernel has no spectral norm);
    ``conditional``: G takes a class embedding (as wide as z) beside z, D's basis gives features
    as wide as the 4x4 stage and the logit is their projection on the label's embedding when
    ``d_projection`` (R3GAN's conditional D); ``class_head``: ACGAN's class logits.
    """
    size, channels = _built_size(data_shape, z_dim=z_dim, expansion=expansion, kernel_size=kernel_size)
    stages = _stages(
        size, list(widths), list(blocks), list(cardinality), expansion, kernel_size, list(resampling_filter)
    )
    generator = _generator(stages, z_dim, channels, data_shape[0], g_tanh, num_classes if conditional else 0)
    discriminator = _discriminator(
        stages, data_shape, d_spectral_norm, conditional, num_classes, d_projection, class_head
    )
    return generator, discriminator


def _built_size(data_shape: tuple[int, ...], **sizes: int) -> tuple[int, int]:
    """(the size the networks work at, channels): 2^k, or 32 for 28x28 images."""
    size, channels = square_images("r3gan", data_shape, **sizes)
    if size == MNIST_SIZE:
        return MNIST_BUILT, channels
    if size & (size - 1):
        raise ConfigError(
            "model", f"r3gan needs square images of 8x8, 16x16, 32x32, ... (a power of two) or 28x28, got {size}x{size}"
        )
    return size, channels


def _stages(
    size: int,
    widths: list[int],
    blocks: list[int],
    cardinality: list[int],
    expansion: int,
    kernel_size: int,
    taps: list[float],
) -> Stages:
    """The first log2(size) - 1 entries of each list (4x4 first), checked."""
    count = int(math.log2(size)) - 1
    for key, values in (("widths", widths), ("blocks", blocks), ("cardinality", cardinality)):
        if len(values) < count:
            raise ConfigError(
                f"model.{key}",
                f"{size}x{size} images need {count} stages (4x4 to {size}x{size}), got {len(values)}: {values}",
            )
    if min(widths[:count]) < 1:
        raise ConfigError("model.widths", f"must be >= 1, got {widths}")
    if min(blocks[:count]) < 0:
        raise ConfigError("model.blocks", f"must be >= 0, got {blocks}")
    for width, groups in zip(widths[:count], cardinality[:count], strict=True):
        if groups < 1 or (width * expansion) % groups:
            raise ConfigError(
                "model.cardinality",
                f"{groups} groups must divide the inner width {width} x expansion {expansion} of their stage",
            )
    return Stages(widths[:count], blocks[:count], cardinality[:count], expansion, kernel_size, taps)


def _residual_block(h, stages: Stages, groups: int, spectral_norm: bool = False):
    """h + conv1x1(act(grouped conv(act(conv1x1(h))))); the convs before an activation carry its bias."""
    width, inner, gain = h.shape[-1], h.shape[-1] * stages.expansion, stages.block_gain
    y = conv2d(inner, 1, spectral_norm, kernel_initializer=msr(gain))(h)
    y = layers.LeakyReLU(SLOPE)(y)
    y = conv2d(inner, stages.kernel_size, spectral_norm, padding="same", groups=groups, kernel_initializer=msr(gain))(y)
    y = layers.LeakyReLU(SLOPE)(y)
    y = conv2d(width, 1, spectral_norm, use_bias=False, kernel_initializer=msr(gain if spectral_norm else 0))(y)
    return layers.Add()([h, y])


def _generator(stages: Stages, z_dim: int, channels: int, image_size: int, tanh: bool, classes: int) -> keras.Model:
    """z (B, z_dim) [and labels (B,)] -> (B, image_size, image_size, channels)."""
    z = keras.Input((z_dim,))
    y = label_input() if classes else None
    # N(0, 1/classes) rows: a bias-free linear map of the one-hot label, as a lookup.
    g_in = with_class_embedding(z, y, classes, msr(1)) if y is not None else z
    h = GenerativeBasis()(layers.Dense(stages.widths[0], use_bias=False, kernel_initializer=msr(1))(g_in))
    for stage, width in enumerate(stages.widths):
        if stage:
            if width != h.shape[-1]:
                h = layers.Conv2D(width, 1, use_bias=False, kernel_initializer=msr(1))(h)
            h = Upsample(stages.taps)(h)
        for _ in range(stages.blocks[stage]):
            h = _residual_block(h, stages, stages.cardinality[stage])
    h = layers.Conv2D(channels, 1, use_bias=False, kernel_initializer=msr(1))(h)
    if image_size < h.shape[1]:
        h = layers.Cropping2D((h.shape[1] - image_size) // 2)(h)
    # Outputs in float32 under mixed precision too: losses and penalties are computed in float32.
    h = layers.Activation("tanh" if tanh else "linear", dtype="float32")(h)
    return keras.Model(z if y is None else [z, y], h, name="generator")


def _discriminator(
    stages: Stages,
    data_shape: tuple[int, ...],
    spectral_norm: bool,
    conditional: bool,
    classes: int,
    projection: bool,
    class_head: bool,
) -> keras.Model:
    """images (B, H, W, C) [and labels (B,)] -> logit (B, 1) (conditional: see ``discriminator_outputs``)."""
    x = keras.Input(data_shape)
    h = x
    if data_shape[0] == MNIST_SIZE:  # pad with -1: shift so the background is 0, zero-pad, shift back
        h = layers.ZeroPadding2D((MNIST_BUILT - MNIST_SIZE) // 2)(layers.Rescaling(1.0, offset=1.0)(h))
        h = layers.Rescaling(1.0, offset=-1.0)(h)
    h = conv2d(stages.widths[-1], 1, spectral_norm, use_bias=False, kernel_initializer=msr(1))(h)
    for stage in reversed(range(len(stages.widths))):
        for _ in range(stages.blocks[stage]):
            h = _residual_block(h, stages, stages.cardinality[stage], spectral_norm)
        if stage:
            h = Downsample(stages.taps)(h)
            if stages.widths[stage - 1] != h.shape[-1]:
                h = conv2d(stages.widths[stage - 1], 1, spectral_norm, use_bias=False, kernel_initializer=msr(1))(h)
    width = h.shape[-1]
    # The discriminative basis: one 4x4 filter per channel -> (B, C).
    basis = conv2d(width, 4, spectral_norm, groups=width, use_bias=False, kernel_initializer=msr(1))(h)
    features = layers.Flatten()(basis)
    if conditional and projection:  # the basis's linear map gives the features the label's embedding meets
        features = dense(width, spectral_norm, use_bias=False, kernel_initializer=msr(1))(features)
        return discriminator_model(
            x, features, None, True, classes, True, class_head, spectral_norm, msr(1.0 / math.sqrt(width))
        )
    logit = dense(1, spectral_norm, use_bias=False, kernel_initializer=msr(1), dtype="float32")(features)
    return discriminator_model(x, features, logit, conditional, classes, projection, class_head, spectral_norm)
