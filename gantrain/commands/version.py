"""``--version`` of the console commands: gantrain's version and the commit it was built from, then
TensorFlow, Keras, Hydra and Python, one line each.

The versions come from the installed packages' metadata, so the answer is immediate: TensorFlow is
imported only when no ``tensorflow`` distribution names its version (a source build, say).

Usage: ``print(version_text())``.
"""

from __future__ import annotations

import platform

from gantrain import __version__
from gantrain.run.environment import package_version, source_commit


def version_text() -> str:
    """Five lines: ``gantrain <version> (commit <sha>)``, then TensorFlow, Keras, Hydra and Python."""
    return "\n".join(
        [
            f"gantrain {__version__} ({_commit_note(source_commit())})",
            f"TensorFlow {_tensorflow_version()}",
            f"Keras {package_version('keras') or 'not installed'}",
            f"Hydra {package_version('hydra-core') or 'not installed'}",
            f"Python {platform.python_version()}",
        ]
    )


def _commit_note(record: dict) -> str:
    if "commit" not in record:
        return "commit unknown"
    return f"commit {record['commit']}" + (", with uncommitted changes" if record.get("dirty") else "")


def _tensorflow_version() -> str:
    version = package_version("tensorflow")
    if version is not None:
        return version
    try:  # tensorflow-cpu, tensorflow-macos or a source build: only the module knows
        import tensorflow as tf
    except ImportError:
        return "not installed"
    return tf.__version__
