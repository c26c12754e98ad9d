"""Image folders larger than memory: a ``tf.data`` pipeline that reads, decodes and batches in
parallel while the step trains (``dataset.in_memory=false``).

By default (``dataset.cache=true``) each image is decoded, cropped and resized once, exactly as
the in-memory path does it (Pillow), and kept as a small PNG in a cache beside the data
(``<folder>/.gantrain_cache/``, or ``$GANTRAIN_DATA_DIR/folder_cache/`` when that is set) that
later runs read. An entry is named by its file's path, size and modification time: a new or changed
file is decoded when the next run starts, and entries of files no longer in the folder are dropped.
The cache is written only once every check of the command has passed (:meth:`ImageStream.prepare`).
Without the cache, TensorFlow decodes and resizes the originals in the pipeline (bicubic with
antialiasing: pixels may differ from Pillow's by rounding), and a file that fails there is dropped
with TensorFlow's warning.

The order is a shuffle of the whole file list (names, not images: the buffer is small), new each
epoch, seeded by ``train.seed``; the iterator's position is saved in every checkpoint, so a resumed
run reads the batches the uninterrupted run would have read. Unlike the in-memory path, which
draws every batch's examples independently, a stream goes through the data epoch by epoch.

Usage::

    stream = ImageStream.open(root, files, resolution=64, channels=3, cache=True).prepare()
    batches = stream.batches(batch_size=320, seed=0)   # tf.data.Dataset of uint8 (320, 64, 64, 3)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from gantrain.data.images import load_images
from gantrain.errors import ConfigError, naming

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageStream:
    sources: tuple[Path, ...]  # the image files it reads, in sorted order
    resolution: int
    channels: int
    cache: Path | None  # the cache folder (filled by :meth:`prepare`), or None: decode the originals
    listed: tuple[Path, ...] = ()  # every image of the folder: the cache keeps entries for these only
    reads: tuple[str, ...] = ()  # what the pipeline reads (cache entries or originals), set by :meth:`prepare`

    @classmethod
    def open(cls, root: Path, files: Sequence[Path], resolution: int, channels: int, cache: bool) -> ImageStream:
        """A stream of ``files``; nothing is read or written until :meth:`prepare`."""
        folder = cache_dir(root, resolution, channels) if cache else None
        return cls(tuple(files), resolution, channels, folder, tuple(files))

    def __len__(self) -> int:
        return len(self.sources)

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.resolution, self.resolution, self.channels)

    @property
    def source(self) -> str:
        return f"the cache {self.cache}" if self.cache is not None else "the original files"

    def head(self, n: int | None = None) -> np.ndarray:
        """The first ``n`` images (all: None), decoded as the in-memory path decodes them."""
        images, _ = load_images(self.sources[:n], self.resolution, self.channels)
        return np.stack(images).reshape(-1, *self.shape)

    def take(self, index: np.ndarray) -> ImageStream:
        return replace(self, sources=tuple(self.sources[i] for i in index))

    def prepare(self) -> ImageStream:
        """Bring the cache up to date (decoding only images not cached yet, dropping entries of
        files no longer in the folder); the stream of the cached images that could be read."""
        if self.cache is None:
            return replace(self, reads=tuple(map(str, self.sources)))
        entries = {f: self.cache / entry_name(f) for f in self.listed}
        missing = [f for f in self.sources if not entries[f].is_file()]
        if missing:
            write_cache(self.cache, missing, [entries[f] for f in missing], self.resolution, self.channels)
        keep = set(entries.values())
        for stale in self.cache.glob("*.png"):
            if stale not in keep:
                stale.unlink(missing_ok=True)
        readable = tuple(f for f in self.sources if entries[f].is_file())
        if not readable:
            raise ConfigError("dataset.path", f"none of the {len(self.sources)} images could be read")
        return replace(self, sources=readable, reads=tuple(str(entries[f]) for f in readable))

    def batches(self, batch_size: int, seed: int) -> tf.data.Dataset:
        """An endless, seeded sequence of uint8 batches (batch_size, H, W, C) of a prepared stream."""
        if len(self.reads) != len(self.sources):
            raise RuntimeError("ImageStream.batches() needs the stream that prepare() returns")
        data = tf.data.Dataset.from_tensor_slices(list(self.reads))
        data = data.shuffle(len(self.reads), seed=seed, reshuffle_each_iteration=True).repeat()
        data = data.map(self._decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        if self.cache is None:
            data = data.ignore_errors(log_warning=True)
        return data.batch(batch_size, drop_remainder=True).prefetch(tf.data.AUTOTUNE)

    def _decode(self, path: tf.Tensor) -> tf.Tensor:
        raw = tf.io.read_file(path)
        if self.cache is not None:
            return tf.ensure_shape(tf.io.decode_png(raw, channels=self.channels), self.shape)
        image = tf.io.decode_image(raw, channels=self.channels, expand_animations=False)
        height, width = tf.shape(image)[0], tf.shape(image)[1]
        side = tf.minimum(height, width)
        image = tf.image.crop_to_bounding_box(image, (height - side) // 2, (width - side) // 2, side, side)
        image = tf.image.resize(image, [self.resolution, self.resolution], method="bicubic", antialias=True)
        return tf.ensure_shape(tf.cast(tf.clip_by_value(tf.round(image), 0, 255), tf.uint8), self.shape)


def cache_dir(root: Path, resolution: int, channels: int) -> Path:
    """Where the cache of the folder ``root`` at this size lives."""
    size = f"{resolution}x{resolution}x{channels}"
    if os.environ.get("GANTRAIN_DATA_DIR"):
        folder = hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:12]
        return Path(os.environ["GANTRAIN_DATA_DIR"]).expanduser() / "folder_cache" / folder / size
    return root / ".gantrain_cache" / size


def entry_name(file: Path) -> str:
    """The cache entry of ``file``: named by its path, size and modification time, so a changed
    file gets a new entry and its old one is dropped."""
    try:
        stat = file.stat()
    except OSError:  # a broken link: it is skipped with a warning when it is decoded, never cached
        stat = file.lstat()
    return hashlib.sha256(f"{file.resolve()}\t{stat.st_size}\t{stat.st_mtime_ns}".encode()).hexdigest()[:24] + ".png"


def write_cache(
    folder: Path, files: Sequence[Path], entries: Sequence[Path], resolution: int, channels: int, chunk: int = 2048
) -> None:
    """Decode ``files`` (unreadable ones skipped with a warning) into the PNGs ``entries``, a chunk
    at a time (memory stays small), each written under a temporary name and then renamed."""
    folder.mkdir(parents=True, exist_ok=True)
    log.info("dataset=folder: caching %d resized images in %s (once)", len(files), folder)
    for start in range(0, len(files), chunk):
        images, kept = load_images(files[start : start + chunk], resolution, channels)
        entry_of = dict(zip(files[start : start + chunk], entries[start : start + chunk], strict=True))
        for image, file in zip(images, kept, strict=True):
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".png")
            try:
                with os.fdopen(fd, "wb") as out:
                    Image.fromarray(
                        image.reshape(resolution, resolution, channels).squeeze(-1) if channels == 1 else image
                    ).save(out, format="PNG", compress_level=1)
                os.replace(tmp, entry_of[file])
            except OSError as err:  # a full disk: no torn entry is left for the next run to trust
                Path(tmp).unlink(missing_ok=True)
                raise naming(err, entry_of[file]) from None
