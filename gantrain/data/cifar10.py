"""CIFAR-10 in its official python-pickle layout: ``cifar-10-batches-py/`` or the ``.tar.gz``.

Train split: ``data_batch_1`` .. ``data_batch_5``; test split: ``test_batch``. Each batch is a
pickled dict whose ``b"data"`` is uint8 (10000, 3072), one row per image in CHW order.
"""

from __future__ import annotations

import io
import pickle
import tarfile
from pathlib import Path

import numpy as np

from gantrain.data import DATASETS, Dataset, check_labels, files
from gantrain.errors import ConfigError

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
CLASSES = 10
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}


@DATASETS.register("cifar10", held_out="split", labels="its batches have no labels")
def cifar10(path: str | None = None, split: str = "train") -> Dataset:
    """32x32x3 natural images in 10 classes (Krizhevsky 2009)."""
    if split not in BATCHES:
        raise ConfigError("dataset.split", f"unknown split '{split}'; known: train, test")
    source = files.given_path(path) or files.find([FOLDER, ARCHIVE]) or files.download(URL, ARCHIVE, "CIFAR-10")
    if source.is_dir() and (source / FOLDER).is_dir():
        source = source / FOLDER
    elif source.is_dir() and (source / ARCHIVE).is_file():
        source = source / ARCHIVE
    batches = [_batch_data(raw, source, name) for name, raw in _read_batches(source, split)]
    x = np.concatenate([data for data, _ in batches]).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    labels = [y for _, y in batches if y is not None]
    y = np.concatenate(labels) if len(labels) == len(batches) else None
    return Dataset("cifar10", x, y)


def _read_batches(source: Path, split: str):
    """(name, bytes) of each pickled batch of ``split``, from a directory or the archive."""
    if source.is_dir():
        for name in BATCHES[split]:
            if not (source / name).is_file():
                raise ConfigError("dataset.path", f"{source} has no CIFAR-10 batch file '{name}'")
            yield name, (source / name).read_bytes()
        return
    try:
        with tarfile.open(source, "r:*") as archive:
            for name in BATCHES[split]:
                try:
                    member = archive.extractfile(f"{FOLDER}/{name}")
                except KeyError:
                    member = None
                if member is None:
                    raise ConfigError("dataset.path", f"{source} has no member '{FOLDER}/{name}'")
                yield name, member.read()
    except (tarfile.TarError, OSError, EOFError) as err:
        raise ConfigError("dataset.path", f"{source} is not a readable CIFAR-10 archive ({err})") from None


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists and numpy arrays only: a batch file cannot run code."""

    ALLOWED = {
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("_codecs", "encode"),  # how Python 3 writes bytes at pickle protocol 2
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def _batch_data(raw: bytes, source: Path, name: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(images (N, 3072), labels (N,) or None when the batch's labels are missing or do not fit)."""
    try:
        batch = _ArrayUnpickler(io.BytesIO(raw), encoding="bytes").load()
        data = np.asarray(batch[b"data"])
        labels = np.asarray(batch.get(b"labels", []), np.int64)
    except (pickle.UnpicklingError, EOFError, KeyError, TypeError, ValueError) as err:
        raise ConfigError("dataset.path", f"{source}: batch '{name}' is not a CIFAR-10 pickle ({err})") from None
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ConfigError(
            "dataset.path", f"{source}: batch '{name}' holds {data.dtype} {data.shape}, expected uint8 (N, 3072)"
        )
    if labels.shape != (len(data),):
        return data, None
    check_labels(labels, CLASSES, f"{source}: batch '{name}'")
    return data, labels
