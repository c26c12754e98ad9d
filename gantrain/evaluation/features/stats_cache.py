"""The real data's statistics behind FID, KID and intra-FID, computed once and cached as .npz files.

A cached file is named, and says inside (``key``), what it was computed from: the dataset's
settings (name, split, resolution, channels...), a SHA-256 of the decoded real images and labels it
was computed on and their number, the extractor and a fingerprint of its weights. A file is used
only when what it says matches what is asked for; anything else is recomputed, never silently
reused. Files named the old way (``gantrain_stats_<dataset>_<extractor>_<split>.npz``, which said
nothing of their data) are ignored with a note.

Files live beside the data when its folder can be written, else in the Keras cache's datasets dir;
a matching file already beside read-only data (put there to be shared) is used as it is.

Usage: ``stats = reference(cfg.dataset, extract, "classifier", weights=fingerprint)`` ->
``{"mu", "sigma", "features"}``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gantrain.data import DATASETS
from gantrain.evaluation.metrics import gaussian_statistics
from gantrain.run.directory import atomic_write, npz_bytes

log = logging.getLogger(__name__)

KID_FEATURES = 10_000  # real features kept for KID
# Real images behind the reference statistics: the first this many of the split (every image of
# MNIST, CIFAR-10 and stacked MNIST; a bound for image folders, which may not fit in memory).
REFERENCE_IMAGES = 100_000
# Dataset keys that change where or how the data is read, not what it holds; ``subset`` only
# chooses what training sees: the statistics come from the whole split.
NOT_CONTENT = ("path", "in_memory", "cache", "subset")
FORMAT = 2  # of the cached files: 2 records what they were computed from


def reference(node: DictConfig, extract, key: str, weights: str = "") -> dict[str, np.ndarray]:
    """mu, sigma and up to 10,000 features of the real split, by the extractor ``key`` whose
    weights have the fingerprint ``weights``."""

    def compute() -> dict[str, np.ndarray]:
        features, _ = extract(DATASETS.build(node).head(REFERENCE_IMAGES))
        mu, sigma = gaussian_statistics(features)
        keep = np.random.default_rng(0).choice(len(features), min(KID_FEATURES, len(features)), replace=False)
        return {"mu": mu, "sigma": sigma, "features": features[np.sort(keep)]}

    fields = {"statistics": "reference", "kid_features": KID_FEATURES, **source(node, key, weights)}
    return cached_arrays(node, stats_name(node, key), fields, compute)


def class_references(node: DictConfig, extract, key: str, weights: str = "") -> dict[str, np.ndarray]:
    """mu (K, F) and sigma (K, F, F) of each class's real images of the split."""

    def compute() -> dict[str, np.ndarray]:
        data = DATASETS.build(node)
        features, _ = extract(data.head(REFERENCE_IMAGES))
        y = data.y[:REFERENCE_IMAGES]
        per_class = [gaussian_statistics(features[y == k]) for k in range(data.classes)]
        return {"mu": np.stack([mu for mu, _ in per_class]), "sigma": np.stack([sigma for _, sigma in per_class])}

    fields = {"statistics": "class_references", **source(node, key, weights)}
    return cached_arrays(node, stats_name(node, key, "_classes"), fields, compute)


def stats_name(node: DictConfig, key: str, suffix: str = "") -> str:
    """A statistics file's name before the digest of what it was computed from (the whole name of
    an old-format file)."""
    return f"gantrain_stats_{node.name}_{key}_{node.get('split', 'train')}{suffix}"


def source(node: DictConfig, key: str, weights: str) -> dict:
    """What statistics of ``node``'s real data by the extractor ``key`` with ``weights`` depend on."""
    container = cast(dict[str, Any], OmegaConf.to_container(node, resolve=True))
    settings = {k: v for k, v in container.items() if k not in NOT_CONTENT}
    digest, examples = data_digest(node)
    return {
        "format": FORMAT,
        "dataset": settings,
        "data_sha256": digest,
        "examples": examples,
        "extractor": key,
        "weights": weights,
    }


def data_digest(node: DictConfig) -> tuple[str, int]:
    """(SHA-256 of the real images and labels that statistics are computed on, their number)."""
    path = node.get("path")
    stamp: tuple[int, ...] = ()
    if path and Path(path).expanduser().exists():
        stat = Path(path).expanduser().resolve().stat()
        stamp = (stat.st_size, stat.st_mtime_ns)
    return _data_digest(OmegaConf.to_yaml(node, resolve=True), stamp)


@functools.lru_cache(maxsize=16)
def _data_digest(node_yaml: str, stamp: tuple) -> tuple[str, int]:
    # Decoding the data costs seconds to minutes: once per process for each dataset node and
    # state of its path (``stamp``: a changed data file gets a new digest).
    data = DATASETS.build(cast(DictConfig, OmegaConf.create(node_yaml)))
    x = np.ascontiguousarray(data.head(REFERENCE_IMAGES))
    digest = hashlib.sha256(f"{x.shape} {x.dtype}".encode())
    digest.update(x.data.cast("B"))
    if data.y is not None:
        digest.update(np.ascontiguousarray(data.y[:REFERENCE_IMAGES], np.int64).tobytes())
    return digest.hexdigest(), len(x)


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes (a weights file): read once per process for each size and mtime."""
    stat = Path(path).stat()
    return _file_digest(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _file_digest(path: str, size: int, mtime_ns: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def arrays_digest(arrays) -> str:
    """SHA-256 of a list of arrays (a model's weights)."""
    digest = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        digest.update(f"{a.shape} {a.dtype}".encode())
        digest.update(a.tobytes())
    return digest.hexdigest()


def cached_arrays(node: DictConfig, stem: str, fields: dict, compute: Callable[[], dict]) -> dict[str, np.ndarray]:
    """The arrays of the cached file whose ``key`` is ``fields``, or ``compute()``'s, stored first."""
    key = json.dumps(fields, sort_keys=True)
    name = f"{stem}_{hashlib.sha256(key.encode()).hexdigest()[:16]}.npz"
    places = list(dict.fromkeys(p for p in (_data_folder(node), cache_dir(node)) if p is not None))
    for place in places:
        if (place / f"{stem}.npz").is_file():
            note_ignored(
                place / f"{stem}.npz",
                "an old-format cache that does not record what data it was computed from; recomputing",
            )
        if (place / name).is_file():
            with np.load(place / name) as stored:
                arrays = dict(stored)
            if str(arrays.pop("key", "")) == key:
                return arrays
            note_ignored(place / name, "it says it was computed from other data or settings; recomputing")
    arrays = compute()
    write_cache(node, name, npz_bytes(key=np.array(key), **arrays))
    return arrays


@functools.cache
def note_ignored(path: Path, why: str) -> None:
    """One log line per file and process, not one per evaluation."""
    log.info("ignoring %s: %s", path, why)


def write_cache(node: DictConfig, name: str, data: bytes) -> Path:
    """Write a cache file beside the data, or in the Keras cache when that folder refuses it."""
    from gantrain.data.files import search_dirs

    path = cache_dir(node) / name
    try:
        atomic_write(path, data)  # a cut-off write never leaves a truncated cache
    except OSError as err:
        # A folder whose mode allows writing may still refuse (a read-only mount, say).
        path = search_dirs()[-1] / name
        log.info("cannot write %s (%s); caching in %s", cache_dir(node) / name, err.strerror or err, path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, data)
    return path


def cache_dir(node: DictConfig) -> Path:
    """Where caches are written: beside the data file when that directory is writable, else the
    Keras cache's datasets dir."""
    from gantrain.data.files import search_dirs

    folder = _data_folder(node)
    # The mode bits as well: root may write anywhere, but a read-only data folder is not ours.
    if folder is not None and os.access(folder, os.W_OK) and folder.stat().st_mode & 0o222:
        return folder
    return search_dirs()[-1]


def cached(node: DictConfig, name: str) -> Path:
    """The cache file ``name`` for the dataset ``node``: an existing one beside the data (even in a
    read-only folder, where someone put it to be shared), else in :func:`cache_dir`, where it is
    written when missing."""
    folder = _data_folder(node)
    if folder is not None and (folder / name).is_file():
        return folder / name
    return cache_dir(node) / name


def _data_folder(node: DictConfig) -> Path | None:
    path = node.get("path")
    if not path:
        return None
    folder = Path(path).expanduser().resolve()
    return folder if folder.is_dir() else folder.parent
