"""MNIST and Fashion-MNIST: the Keras ``.npz`` layout or the official IDX files (optionally .gz).

``dataset.path`` may name the .npz, one IDX images file, or a directory holding either.
"""

from __future__ import annotations

import gzip
import struct
import zipfile
from pathlib import Path
from typing import Literal, overload

import numpy as np

from gantrain.data import DATASETS, Dataset, check_labels, files
from gantrain.errors import ConfigError

# The origins Keras itself downloads from.
MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
FASHION_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/"
CLASSES = 10  # digits, or Fashion-MNIST's ten kinds of article
IMAGE_FILES = {"train": "train-images-idx3-ubyte", "test": "t10k-images-idx3-ubyte"}


@DATASETS.register(
    "mnist",
    kind="digits",
    held_out="split",
    labels="its file has no labels (y_train/y_test in the .npz, or the labels IDX file beside the images)",
)
def mnist(path: str | None = None, split: str = "train") -> Dataset:
    """Handwritten digits, 28x28x1 (LeCun et al. 1998)."""
    _check_split(split)
    source = (
        files.given_path(path) or files.find(["mnist.npz", "mnist"]) or files.download(MNIST_URL, "mnist.npz", "MNIST")
    )
    return Dataset("mnist", *_images(source, split))


@DATASETS.register(
    "fashion_mnist",
    kind="digits",
    held_out="split",
    labels="its file has no labels (the labels IDX file beside the images)",
)
def fashion_mnist(path: str | None = None, split: str = "train") -> Dataset:
    """Zalando's article images, 28x28x1 (Xiao et al. 2017), in MNIST's formats."""
    _check_split(split)
    name = IMAGE_FILES[split] + ".gz"
    source = (
        files.given_path(path)
        or files.find(["fashion-mnist", "fashion_mnist.npz"])
        or files.download(FASHION_URL + name, f"fashion-mnist/{name}", "Fashion-MNIST")
    )
    return Dataset("fashion_mnist", *_images(source, split))


def _check_split(split: str) -> None:
    if split not in IMAGE_FILES:
        raise ConfigError("dataset.split", f"unknown split '{split}'; known: train, test")


def _images(source: Path, split: str) -> tuple[np.ndarray, np.ndarray | None]:
    """uint8 images (N, 28, 28, 1) from a .npz, an IDX file or a directory holding either, and
    their labels (N,) when the .npz has them or the labels IDX file lies beside the images."""
    if source.is_dir():
        idx = [source / (IMAGE_FILES[split] + ext) for ext in ("", ".gz")]
        found = [p for p in idx if p.is_file()] or sorted(
            p for p in source.glob("*.npz") if not files.written_by_gantrain(p)
        )
        if not found:
            raise ConfigError(
                "dataset.path",
                f"{source} holds neither {IMAGE_FILES[split]}[.gz] nor a .npz file",
            )
        source = found[0]
    if source.suffix == ".npz":
        x = _read_npz(source, f"x_{split}")
        y = _read_npz(source, f"y_{split}", required=False)
    else:
        x = read_idx(source)
        labels = source.with_name(source.name.replace("images-idx3", "labels-idx1"))
        y = read_idx(labels) if labels != source and labels.is_file() else None
    if x.dtype != np.uint8 or x.ndim != 3 or x.shape[1:] != (28, 28) or len(x) == 0:
        raise ConfigError(
            "dataset.path",
            f"{source}: expected uint8 images of shape (N, 28, 28), found {x.dtype} {x.shape}",
        )
    if y is not None and y.shape != (len(x),):
        y = None  # labels that do not fit the images are not used
    check_labels(y, CLASSES, str(source))
    return x[..., None], y


@overload
def _read_npz(path: Path, key: str, required: Literal[True] = True) -> np.ndarray: ...
@overload
def _read_npz(path: Path, key: str, required: bool) -> np.ndarray | None: ...
def _read_npz(path: Path, key: str, required: bool = True) -> np.ndarray | None:
    try:
        with np.load(path, allow_pickle=False) as archive:
            if key not in archive and not required:
                return None
            if key not in archive:
                raise ConfigError("dataset.path", f"{path} has no array '{key}' (found: {', '.join(archive.files)})")
            return archive[key]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise ConfigError("dataset.path", f"{path} is not a readable .npz file ({err})") from None


def read_idx(path: Path) -> np.ndarray:
    """An IDX file of unsigned bytes (the format of the official MNIST files), gzipped or not."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as err:
        raise ConfigError("dataset.path", f"{path} cannot be read ({err})") from None
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise ConfigError("dataset.path", f"{path} is not an IDX file of unsigned bytes")
    ndim = data[3]
    header = 4 + 4 * ndim
    dims = struct.unpack(f">{ndim}I", data[4:header]) if len(data) >= header else ()
    if len(data) != header + int(np.prod(dims)) or len(dims) != ndim:
        raise ConfigError("dataset.path", f"{path} is truncated or has trailing bytes")
    return np.frombuffer(data, np.uint8, offset=header).reshape(dims)
