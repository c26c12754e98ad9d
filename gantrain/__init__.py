"""gantrain: train GANs from composable Hydra configs.

Usage: ``gantrain model=dcgan loss=wgan_gp`` (see README.md); in Python,
``gantrain.load("outputs/run").sample(16)`` (:func:`gantrain.api.load`).
"""

import importlib.metadata

try:
    # pyproject.toml's version, as the installed package records it: the one place it is written.
    __version__ = importlib.metadata.version("gantrain")
except importlib.metadata.PackageNotFoundError:  # a source tree put on sys.path, never installed
    __version__ = "0+unknown"


def __getattr__(name: str):
    """``gantrain.load``, imported on first use: the console commands, which import this package
    first, do not pay for Hydra's import."""
    if name == "load":
        from gantrain.api import load

        return load
    raise AttributeError(f"module 'gantrain' has no attribute {name!r}")
