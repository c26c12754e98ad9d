"""Finding dataset files: ``dataset.path``, then $GANTRAIN_DATA_DIR, then the Keras cache; else a
download from the official origin (cached), or one sentence saying which file to put where."""

from __future__ import annotations

import os
import shutil
import tempfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import overload

from gantrain.errors import ConfigError, GantrainError


def search_dirs() -> list[Path]:
    """Where datasets are looked for when ``dataset.path`` is not given, in order."""
    dirs = []
    if os.environ.get("GANTRAIN_DATA_DIR"):
        dirs.append(Path(os.environ["GANTRAIN_DATA_DIR"]).expanduser())
    keras_home = Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser()
    dirs.append(keras_home / "datasets")
    return dirs


def written_by_gantrain(path: Path) -> bool:
    """A file gantrain caches beside the data (reference statistics, a feature classifier): never
    data, though it may share the data's format (.npz)."""
    return path.name.startswith("gantrain_")


@overload
def given_path(path: str) -> Path: ...
@overload
def given_path(path: None) -> None: ...
@overload
def given_path(path: str | None) -> Path | None: ...
def given_path(path: str | None) -> Path | None:
    """``dataset.path`` as a Path, which must exist."""
    if path is None:
        return None
    p = Path(path).expanduser()
    if not p.exists():
        raise ConfigError("dataset.path", f"no such file or directory: {p}")
    return p


def find(names: list[str]) -> Path | None:
    """The first of ``names`` (files or directories) present in a search dir."""
    for directory in search_dirs():
        for name in names:
            if (directory / name).exists():
                return directory / name
    return None


def download(
    url: str, relpath: str, what: str, folder: Path | None = None, option: str = "dataset.path=<file>"
) -> Path:
    """Fetch ``url`` into ``folder`` (default: the first search dir) as ``relpath``; a failure
    names the file to place, and where, and the ``option`` that names a file instead."""
    dest = (folder or search_dirs()[0]) / relpath
    tmp = None
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with urllib.request.urlopen(url, timeout=30) as response:
            fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(response, out)
        os.replace(tmp, dest)  # a cut download never leaves a truncated file under the real name
    except (urllib.error.URLError, OSError, ValueError) as err:
        if tmp is not None and os.path.exists(tmp):
            os.remove(tmp)
        reason = getattr(err, "reason", err)
        raise GantrainError(
            f"{what} is not on this machine and could not be downloaded from {url} ({reason}); "
            f"put {dest.name} in {dest.parent}{'' if folder else ' (or $GANTRAIN_DATA_DIR)'}, or pass {option}"
        ) from None
    return dest
