"""Architectures: each entry builds ``(generator, discriminator)`` for one example shape.

The generator maps noise (B, z_dim) to examples (B, *data_shape); the discriminator maps
examples to one logit each (B, 1). Usage: ``G, D = MODELS.build(cfg.model, data_shape=(28, 28, 1))``,
or ``build_models(cfg.model, (28, 28, 1), "mixed_bfloat16")`` for another precision; what an
architecture declares about itself: ``MODELS.facts("mlp").xla_on_cpu``.
"""

from dataclasses import dataclass

import keras
from omegaconf import DictConfig

from gantrain.errors import ConfigError
from gantrain.registry import Registry


@dataclass(frozen=True)
class ModelFacts:
    """What an architecture is, declared where it registers (``@MODELS.register(name, ...)``)."""

    # XLA (train.jit_compile) makes its step faster on a CPU too: true of dense layers; XLA's
    # convolutions on a CPU are several times slower than TensorFlow's own.
    xla_on_cpu: bool = False


MODELS = Registry("model", facts=ModelFacts())


def packed_shape(data_shape: tuple[int, ...], pack: int) -> tuple[int, ...]:
    """The shape of ``pack`` examples side by side along the last axis (features or channels)."""
    return (*data_shape[:-1], data_shape[-1] * pack)


def build_models(
    node: DictConfig,
    data_shape: tuple[int, ...],
    precision: str = "float32",
    pack: int = 1,
    num_classes: int = 0,
    class_head: bool = False,
):
    """(G, D) with their layers computing in ``precision`` (a Keras dtype policy); outputs stay
    float32. ``pack`` > 1: D takes packs of that many examples (``train.pack``, PacGAN).
    ``num_classes``: the labels of a conditional model (``model.conditional``); ``class_head``: D
    also gives class logits (ACGAN, ``loss.aux_classifier``)."""
    if node.get("conditional") and num_classes < 1:
        raise ConfigError("model.conditional", "needs class labels, and this dataset has none")
    labels = dict(num_classes=num_classes, class_head=class_head)
    keras.mixed_precision.set_global_policy(precision)
    try:
        generator, discriminator = MODELS.build(node, data_shape=data_shape, **labels)
        if pack > 1:  # the same architecture, wider at its input; G as built above
            _, discriminator = MODELS.build(node, data_shape=packed_shape(data_shape, pack), **labels)
        return generator, discriminator
    finally:
        keras.mixed_precision.set_global_policy("float32")  # layers keep the policy they were built with


def square_images(model: str, data_shape: tuple[int, ...], **sizes: int) -> tuple[int, int]:
    """(size, channels) of square images of at least 8x8 for a convolutional ``model``; each of
    ``sizes`` (its config keys) must be >= 1. Otherwise a ConfigError naming the key."""
    if len(data_shape) != 3:
        raise ConfigError(
            "model", f"{model} needs images (H, W, C) but the dataset gives shape {data_shape}; use model=mlp"
        )
    height, width, channels = data_shape
    if height != width or height < 8:
        raise ConfigError("model", f"{model} needs square images of at least 8x8, got {height}x{width}")
    for key, value in sizes.items():
        if value < 1:
            raise ConfigError(f"model.{key}", f"must be >= 1, got {value}")
    return height, channels


def build_auxiliary(
    node: DictConfig, data_shape: tuple[int, ...], heads: int, precision: str = "float32"
) -> keras.Model:
    """A fresh discriminator of the model's architecture whose last layer has ``heads`` outputs."""
    _, discriminator = build_models(node, data_shape, precision)
    last = discriminator.layers[-1]
    head = type(last).from_config({**last.get_config(), "units": heads, "name": "heads"})
    return keras.Model(discriminator.input, head(last.input), name="auxiliary")


# Architectures register themselves on import.
from gantrain.models import dcgan, mlp, r3gan, resnet  # noqa: E402,F401
