"""gantrain: train GANs from composable Hydra configs.

Usage: ``gantrain model=dcgan loss=wgan_gp`` (see README.md).
"""

__version__ = "0.1.0"
