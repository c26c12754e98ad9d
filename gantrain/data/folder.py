"""Any directory of PNG/JPEG images (optionally in class subfolders, which are ignored): users' own data.

Each image is converted to RGB (or greyscale with ``channels=1``), centre-cropped to a square and
resized to ``resolution`` x ``resolution`` with Pillow's bicubic filter (antialiased when it
shrinks). Files are read in sorted path order, so a run's data is the same on every machine.

Usage: ``gantrain dataset=folder dataset.path=~/pictures dataset.resolution=64 model=dcgan``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Optional

import numpy as np
from PIL import Image, UnidentifiedImageError

from gantrain.data import DATASETS, Dataset
from gantrain.data.files import given_path
from gantrain.errors import ConfigError

SUFFIXES = {".png", ".jpg", ".jpeg"}
log = logging.getLogger(__name__)


@DATASETS.register("folder")
def folder(path: Optional[str] = None, resolution: int = 64, channels: int = 3) -> Dataset:
    """uint8 images (N, resolution, resolution, channels) from every image file under ``path``."""
    if path is None:
        raise ConfigError("dataset.path", "required for dataset=folder: a directory of PNG or JPEG images")
    if resolution < 8:
        raise ConfigError("dataset.resolution", f"must be >= 8, got {resolution}")
    if channels not in (1, 3):
        raise ConfigError("dataset.channels", f"must be 1 or 3, got {channels}")
    root = given_path(path)
    if not root.is_dir():
        raise ConfigError("dataset.path", f"{root} is not a directory")
    files = sorted(
        p for p in root.rglob("*")
        if p.suffix.lower() in SUFFIXES and p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )
    if not files:
        raise ConfigError("dataset.path", f"no PNG or JPEG images in {root} or its subfolders")
    x = np.stack([_load(f, resolution, "L" if channels == 1 else "RGB") for f in files])
    log.info("dataset=folder: %d images under %s, each centre-cropped and resized to %dx%dx%d (%.0f MB in memory)",
             len(files), root, resolution, resolution, channels, x.nbytes / 1e6)
    return Dataset("folder", x.reshape(len(files), resolution, resolution, channels))


def _load(file: Path, resolution: int, mode: str) -> np.ndarray:
    try:
        with Image.open(file) as image:
            image = image.convert(mode)
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            return np.asarray(image.resize((resolution, resolution), Image.Resampling.BICUBIC), np.uint8)
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise ConfigError("dataset.path", f"cannot read image {file} ({err})") from None
