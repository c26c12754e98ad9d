"""Image files decoded the same way for an image folder in memory and for its stream: converted
to RGB or greyscale (pixels wider than a byte scaled from the full range of their depth),
centre-cropped to a square and resized with Pillow's bicubic filter; a file that cannot be read is
skipped with a warning naming it.

Usage: ``images, files = load_images(files, resolution=64, channels=3)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

SIXTEEN_BITS = (0, 65535)
# Modes whose pixels are wider than a byte, and the range of their values that maps to 0..255 (the
# full range of the depth; floats by convention in [0, 1]). Pillow's convert() clips them at 255.
WIDE_RANGES = {
    "I;16": SIXTEEN_BITS,
    "I;16L": SIXTEEN_BITS,
    "I;16B": SIXTEEN_BITS,
    "I;16N": SIXTEEN_BITS,
    "I": (-(2**31), 2**31 - 1),
    "F": (0.0, 1.0),
}
log = logging.getLogger(__name__)


def load_images(files: Sequence[Path], resolution: int, channels: int) -> tuple[list[np.ndarray], list[Path]]:
    """The readable ``files`` decoded (in parallel; Pillow releases the GIL while it decodes), in
    order, and which files they are; each unreadable file is skipped with a warning."""
    mode = "L" if channels == 1 else "RGB"
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        decoded = list(pool.map(lambda f: load_image(f, resolution, mode), files))
    kept = [(image, f) for image, f in zip(decoded, files, strict=True) if image is not None]
    return [image for image, _ in kept], [f for _, f in kept]


def load_image(file: Path, resolution: int, mode: str) -> np.ndarray | None:
    """One image, centre-cropped and resized; None (and a warning naming it) if it cannot be read."""
    try:
        with Image.open(file) as image:
            image = as_bytes(image).convert(mode)
            side = min(image.size)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            image = image.crop((left, top, left + side, top + side))
            return np.asarray(image.resize((resolution, resolution), Image.Resampling.BICUBIC), np.uint8)
    except Exception as err:  # noqa: BLE001 - Pillow's decoders fail on bad files with many kinds of error
        log.warning("dataset=folder: skipping %s, which cannot be read (%s)", file, err)
        return None


def as_bytes(image: Image.Image) -> Image.Image:
    """``image`` with pixels of at most a byte: a greyscale image wider than that is scaled from
    its mode's full range to 0..255; values outside that range are a ValueError."""
    if image.mode not in WIDE_RANGES:
        return image
    # Pillow before 10.1 opened 16-bit greyscale PNGs as mode I, not I;16.
    low, high = SIXTEEN_BITS if image.format == "PNG" else WIDE_RANGES[image.mode]
    values = np.asarray(image, np.float64)
    if not (low <= values.min() and values.max() <= high):  # NaN fails too
        raise ValueError(f"mode {image.mode} pixels outside [{low}, {high}]")
    return Image.fromarray(np.round((values - low) * (255 / (high - low))).astype(np.uint8), "L")
