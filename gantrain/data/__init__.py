"""Datasets: each loader returns the training set as one in-memory array, or, for image folders
too large for memory, as a stream read from disk (``gantrain.data.stream``).

Images are uint8 NHWC (scaled to [-1, 1] inside the training step, so memory holds one uint8
copy); 2-D toys are float32 points (N, 2).

Every dataset also takes ``subset`` (``dataset.subset=600``): a fixed, class-balanced choice of
that many examples, for data-efficient experiments and quick trials. Only training sees the
subset; reference statistics for FID come from the whole split.

Each loader also declares its dataset's facts when it registers (:class:`DatasetFacts`), for the
modules that need them before, or without, loading it: ``DATASETS.facts("ring8").kind``.

Usage: ``dataset = load(cfg.dataset)``.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gantrain.errors import ConfigError
from gantrain.registry import Registry

if TYPE_CHECKING:
    from gantrain.data.stream import ImageStream


@dataclass(frozen=True)
class DatasetFacts:
    """What a dataset is, declared by its loader (``@DATASETS.register(name, kind=...)``)."""

    # How its samples are measured (gantrain.evaluation.plan): images; digits, images gantrain's
    # own classifier is trained on (MNIST, Fashion-MNIST); mixture, 2-D points around known mode
    # centres; stacked, stacked MNIST's digit triples.
    kind: str = "images"
    # What to do for class labels (model.conditional) when a loaded copy has none.
    labels: str = "choose a dataset with labels (mnist, fashion_mnist, cifar10, a folder with class subfolders)"
    # Real examples training did not see (to calibrate D): split, the other split; reseed, fresh
    # points from the next seed; same, none exist, so its own examples.
    held_out: str = "same"


DATASETS = Registry("dataset", shared=("subset",), facts=DatasetFacts())

SUBSET_SEED = 0  # the same subset for every run, whatever its train.seed


@dataclass
class Dataset:
    name: str
    x: np.ndarray | None  # uint8 (N, H, W, C) images, or float32 (N, 2) points; None when streamed
    y: np.ndarray | None = None  # class labels (N,), where the files have them
    # Mixtures of Gaussians: the mode centres (K, 2) and their common standard deviation.
    centers: np.ndarray | None = None
    std: float | None = None
    stream: ImageStream | None = None  # the images, read from disk batch by batch
    classes: int = 0  # how many classes the labels name (0: no labels); kept by a subset

    def __post_init__(self):
        if self.y is not None and not self.classes:
            self.classes = int(self.y.max()) + 1

    @property
    def size(self) -> int:
        return len(self.stream) if self.stream is not None else len(self.array())

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of one example, e.g. (28, 28, 1) or (2,)."""
        return self.stream.shape if self.stream is not None else tuple(self.array().shape[1:])

    def array(self) -> np.ndarray:
        """``x``, which every dataset held in memory has (a streamed one has none)."""
        assert self.x is not None, f"dataset {self.name} is streamed, not in memory"
        return self.x

    @property
    def is_image(self) -> bool:
        return len(self.shape) == 3

    @property
    def facts(self) -> DatasetFacts:
        return DATASETS.facts(self.name)

    def conditional_classes(self) -> int:
        """The classes a conditional model (``model.conditional``) of this dataset takes; a
        ConfigError when its labels are missing or not in memory."""
        if self.stream is not None:
            raise ConfigError(
                "model.conditional", "needs the labels in memory; this folder is streamed (set dataset.in_memory=true)"
            )
        if self.y is None:
            raise ConfigError(
                "model.conditional", f"needs class labels, and dataset {self.name} has none: {self.facts.labels}"
            )
        return self.classes

    def head(self, n: int | None = None) -> np.ndarray:
        """The first ``n`` examples (all: None) as an array; a stream decodes them."""
        return self.stream.head(n) if self.stream is not None else self.array()[:n]

    def take(self, index: np.ndarray) -> Dataset:
        """The examples at ``index`` (a stream keeps only those files)."""
        if self.stream is not None:
            return replace(self, stream=self.stream.take(index))
        return replace(self, x=self.array()[index], y=None if self.y is None else self.y[index])


def check_labels(y: np.ndarray | None, classes: int, source: str) -> None:
    """Refuse labels that are not whole numbers from 0 to ``classes`` - 1, naming ``source``: a
    conditional model would otherwise be built for as many classes as the largest label says."""
    if y is None or not len(y):
        return
    if y.dtype.kind not in "iu":
        raise ConfigError("dataset.path", f"{source} holds {y.dtype} labels; expected whole numbers 0 to {classes - 1}")
    outside = y[(y < 0) | (y >= classes)]
    if len(outside):
        raise ConfigError(
            "dataset.path", f"{source} holds the label {outside[0]}; its labels must be 0 to {classes - 1}"
        )


def balanced_choice(size: int, n: int, labels: np.ndarray | None, seed: int = SUBSET_SEED) -> np.ndarray:
    """``n`` of ``size`` indices in increasing order, picked at random with ``seed``; with
    ``labels``, as evenly over the classes as their sizes allow (round robin over shuffled classes)."""
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(size, n, replace=False))
    order = rng.permutation(size)
    shuffled = labels[order]
    # Each example's rank among its class's shuffled examples: rank 0 of every class comes first.
    rank = np.empty(size, np.int64)
    for label in np.unique(shuffled):
        members = np.flatnonzero(shuffled == label)
        rank[members] = np.arange(len(members))
    return np.sort(order[np.lexsort((shuffled, rank))[:n]])


def held_out(node: DictConfig) -> Dataset:
    """Real examples of the dataset ``node`` that training did not see (its ``held_out`` fact)."""
    node = cast(DictConfig, OmegaConf.create(OmegaConf.to_container(node)))
    how = DATASETS.facts(node.name).held_out
    if how == "split" and "split" in node:  # a node without the key calibrates on the examples it names
        node.split = "test" if node.split == "train" else "train"
    elif how == "reseed":
        node.seed = int(node.seed) + 1
    return DATASETS.build(node)


def load(node: DictConfig, subset: bool = True) -> Dataset:
    """The dataset the node names, cut to ``dataset.subset`` examples unless ``subset=False``."""
    n = node.get("subset")
    dataset = DATASETS.build(node)
    if n is None or not subset:
        return dataset
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= dataset.size:
        raise ConfigError("dataset.subset", f"must be between 1 and {dataset.size} (the dataset's size), got {n}")
    return dataset.take(balanced_choice(dataset.size, n, dataset.y))


# Loaders register themselves on import.
from gantrain.data import cifar10, folder, mnist, stacked_mnist, toys  # noqa: E402,F401
