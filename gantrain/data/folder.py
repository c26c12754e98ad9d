"""Any directory of PNG/JPEG images, optionally in class subfolders (their sorted names are the labels of a
conditional run; images at the top level then leave the folder without labels): users' own data.

Each image is converted to RGB (or greyscale with ``channels=1``; pixels wider than a byte, as in
16-bit PNGs, are scaled from the full range of their depth), centre-cropped to a square and
resized to ``resolution`` x ``resolution`` with Pillow's bicubic filter (antialiased when it
shrinks). Files are read in sorted path order, so a run's data is the same on every machine.
A file that cannot be read is skipped with a warning naming it.

Folders whose decoded images would take more than a quarter of this machine's memory (or any
folder, with ``in_memory=false``) are streamed from disk instead (:mod:`gantrain.data.stream`).

Usage: ``gantrain dataset=folder dataset.path=~/pictures dataset.resolution=64 model=dcgan``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from gantrain.data import DATASETS, Dataset
from gantrain.data.files import given_path
from gantrain.data.images import load_images
from gantrain.errors import ConfigError

SUFFIXES = {".png", ".jpg", ".jpeg"}
MEMORY_SHARE = 0.25  # in_memory=null streams a folder whose decoded images exceed this share of RAM
log = logging.getLogger(__name__)


@DATASETS.register("folder", labels="put each class's images in a subfolder of its own")
def folder(
    path: str | None = None,
    resolution: int = 64,
    channels: int = 3,
    in_memory: bool | None = None,
    cache: bool = True,
) -> Dataset:
    """uint8 images (N, resolution, resolution, channels) from every image file under ``path``,
    in memory or streamed (``in_memory``; null: by size); a stream reads a ``cache`` of the
    resized images that the first run writes."""
    if path is None:
        raise ConfigError("dataset.path", "required for dataset=folder: a directory of PNG or JPEG images")
    if resolution < 8:
        raise ConfigError("dataset.resolution", f"must be >= 8, got {resolution}")
    if channels not in (1, 3):
        raise ConfigError("dataset.channels", f"must be 1 or 3, got {channels}")
    root = given_path(path)
    if not root.is_dir():
        raise ConfigError("dataset.path", f"{root} is not a directory")
    files = list_images(root)
    if not files:
        raise ConfigError("dataset.path", f"no PNG or JPEG images in {root} or its subfolders")
    decoded = len(files) * resolution * resolution * channels
    if in_memory is None:
        in_memory = decoded <= MEMORY_SHARE * physical_memory()
    if not in_memory:
        from gantrain.data.stream import ImageStream

        stream = ImageStream.open(root, files, resolution, channels, cache)
        log.info(
            "dataset=folder: %d images under %s, %dx%dx%d, streamed from %s (%.0f MB if decoded)",
            len(stream),
            root,
            resolution,
            resolution,
            channels,
            stream.source,
            decoded / 1e6,
        )
        return Dataset("folder", None, stream=stream)
    images, kept = load_images(files, resolution, channels)
    if not images:
        raise ConfigError("dataset.path", f"none of the {len(files)} images in {root} could be read")
    x = np.stack(images)
    log.info(
        "dataset=folder: %d images under %s, each centre-cropped and resized to %dx%dx%d (%.0f MB in memory)",
        len(kept),
        root,
        resolution,
        resolution,
        channels,
        x.nbytes / 1e6,
    )
    return Dataset("folder", x.reshape(len(kept), resolution, resolution, channels), y=class_labels(root, kept))


def class_labels(root: Path, files: Sequence[Path]) -> np.ndarray | None:
    """Each file's class: the index of its top-level subfolder among the sorted subfolder names;
    None unless every file lies in a subfolder and there are at least two."""
    parts = [f.relative_to(root).parts for f in files]
    if any(len(p) < 2 for p in parts):
        return None
    names = sorted({p[0] for p in parts})
    if len(names) < 2:
        return None
    index = {name: i for i, name in enumerate(names)}
    return np.array([index[p[0]] for p in parts], np.int64)


def list_images(root: Path) -> list[Path]:
    """Every PNG/JPEG under ``root``, sorted, hidden files and folders left out. Anything named as
    an image is listed, so that one that is not a readable file (a folder named x.png, a broken
    link) is skipped with the warning of any unreadable image."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def physical_memory() -> int:
    """Bytes of RAM on this machine."""
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
