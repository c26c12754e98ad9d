"""Preview images: a square grid of generated images, or generated 2-D points over real ones.

Usage: ``png = png_bytes(preview(fake, real))``.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw

PAD = 2  # pixels of grey between tiles


def image_grid(images: np.ndarray, rows: int | None = None) -> Image.Image:
    """(N, H, W, C) floats in [-1, 1] -> a grid of ``rows`` rows (default: a square grid of
    ceil(sqrt(N))^2 tiles), filled row by row (spares grey)."""
    n, h, w, c = images.shape
    if rows is None:
        rows = cols = math.ceil(math.sqrt(n))
    else:
        cols = math.ceil(n / rows)
    pixels = np.clip((images + 1.0) * 127.5 + 0.5, 0, 255).astype(np.uint8)
    grid = np.full((rows * (h + PAD) + PAD, cols * (w + PAD) + PAD, c), 128, np.uint8)
    for i, tile in enumerate(pixels):
        top, left = PAD + (i // cols) * (h + PAD), PAD + (i % cols) * (w + PAD)
        grid[top : top + h, left : left + w] = tile
    return Image.fromarray(grid[..., 0] if c == 1 else grid)


def scatter(fake: np.ndarray, real: np.ndarray, size: int = 512) -> Image.Image:
    """Generated points (orange) over real ones (blue), both (N, 2), framed by the real data."""
    low, high = real.min(axis=0), real.max(axis=0)
    margin = 0.1 * (high - low).max() + 1e-6
    low, high = low - margin, high + margin
    span = (high - low).max()
    image = Image.new("RGB", (size, size), "white")
    draw = ImageDraw.Draw(image)
    for points, color in ((real, (70, 110, 200)), (fake, (240, 120, 20))):
        xy = (points - low) / span * (size - 1)
        for x, y in xy:
            y = size - 1 - y  # image rows grow downwards
            draw.ellipse((x - 1.5, y - 1.5, x + 1.5, y + 1.5), fill=color)
    return image


def preview(fake: np.ndarray, real: np.ndarray | None, rows: int | None = None) -> Image.Image:
    """A grid for images (N, H, W, C) (``rows``: e.g. one per class), a scatter plot for points (N, 2)
    over the ``real`` ones (None for images)."""
    if fake.ndim == 4:
        return image_grid(fake, rows)
    assert real is not None  # points are always drawn over real ones
    return scatter(fake, real)


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
