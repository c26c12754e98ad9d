"""Architectures: each entry builds ``(generator, discriminator)`` for one example shape.

The generator maps noise (B, z_dim) to examples (B, *data_shape); the discriminator maps
examples to one logit each (B, 1). Usage: ``G, D = MODELS.build(cfg.model, data_shape=(28, 28, 1))``.
"""

from gantrain.registry import Registry

MODELS = Registry("model")

# Architectures register themselves on import.
from gantrain.models import dcgan, mlp  # noqa: E402,F401
