"""gantrain: train GANs from composable Hydra configs.

Usage: ``gantrain model=dcgan loss=wgan_gp`` (see README.md).
"""

import importlib.metadata

try:
    # pyproject.toml's version, as the installed package records it: the one place it is written.
    __version__ = importlib.metadata.version("gantrain")
except importlib.metadata.PackageNotFoundError:  # a source tree put on sys.path, never installed
    __version__ = "0+unknown"
