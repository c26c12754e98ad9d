"""Feature extractors for image metrics, and the metrics ``gantrain-eval`` reports with them.

Extractors (``features=``): ``classifier`` — gantrain's own small CNN for 28x28 data (offline;
the default for MNIST and Fashion-MNIST; "classifier FID" etc. compare between gantrain runs, not
with papers); ``inception`` — Keras InceptionV3 or the 2015 Inception graph (the default for other
images; :mod:`gantrain.features.inception`). Each gives FID, KID and Inception Score against the
real data, whose reference statistics are computed once per dataset, extractor and split and
cached beside the data; the classifier adds class coverage.

``stacked_mnist``: the MNIST classifier reads each channel; ``modes`` counts the digit triples
(of 1000) among the samples and ``mode_kl`` is KL(triple histogram || uniform), as in VEEGAN/PacGAN.

Conditional runs (samples drawn for given ``labels``) add, with the classifier, ``class_accuracy``
(the share of samples classified as the class they were drawn for) and ``intra_fid`` (the mean over
classes of the FID between that class's samples and that class's real images, as in Miyato &
Koyama 2018, with the classifier's features).

Usage: ``image_metrics(cfg.dataset, samples)`` -> ``{"fid", "kid", "kid_std", "is", "is_std", ...}``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gantrain.data import DATASETS
from gantrain.errors import ConfigError
from gantrain.features import classifier
from gantrain.metrics import (
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
    kl_to_uniform,
)
from gantrain.run_dir import atomic_write, npz_bytes

KID_FEATURES = 10_000  # real features kept for KID
# Real images behind the reference statistics: the first this many of the split (every image of
# MNIST, CIFAR-10 and stacked MNIST; a bound for image folders, which may not fit in memory).
REFERENCE_IMAGES = 100_000


def image_metrics(
    node: DictConfig,
    samples: np.ndarray,
    extractor: str,
    weights: Optional[str] = None,
    inception_graph: Optional[str] = None,
    labels: Optional[np.ndarray] = None,
) -> dict[str, float]:
    """Metrics of uint8 samples (N, H, W, C) of a run on the dataset ``node`` with ``extractor``
    (``classifier`` or ``inception``, as :func:`gantrain.metric_table.evaluation_plan` resolves it);
    ``labels`` (N,): the classes a conditional run drew the samples for."""
    if node.name == "stacked_mnist":
        return stacked_mode_metrics(node, samples)
    if extractor == "classifier":
        model = classifier.load_or_train(node)
        extract, key = (lambda images: classifier.embed(model, images)), "classifier"
    else:
        from gantrain.features import inception

        if inception_graph is not None:
            extract, key = inception.graph_inception(inception_graph), "inception2015"
        else:
            extract, key = inception.keras_inception(weights), "inception" + ("_random" if weights == "random" else "")
    ref = reference(node, extract, key)
    f, probs = extract(samples)
    kid, kid_std = kernel_inception_distance(f, ref["features"], subset_size=min(1000, len(f)))
    score, score_std = inception_score(probs, splits=min(10, len(probs)))
    result = {
        "fid": frechet_distance(*gaussian_statistics(f), ref["mu"], ref["sigma"]),
        "kid": kid, "kid_std": kid_std, "is": score, "is_std": score_std,
    }
    if extractor == "classifier":
        result.update(class_coverage(probs))
        if labels is not None:
            result.update(conditional_metrics(f, probs, labels, class_references(node, extract, key)))
    return result


def conditional_metrics(features: np.ndarray, probs: np.ndarray, labels: np.ndarray,
                        references: dict[str, np.ndarray]) -> dict[str, float]:
    """``class_accuracy`` and ``intra_fid`` of samples drawn for ``labels``, against per-class
    real statistics ``references`` (``mu`` (K, F), ``sigma`` (K, F, F))."""
    distances = [frechet_distance(*gaussian_statistics(features[labels == k]), references["mu"][k], references["sigma"][k])
                 for k in np.unique(labels)]
    return {"class_accuracy": float((probs.argmax(axis=1) == labels).mean()), "intra_fid": float(np.mean(distances))}


def class_references(node: DictConfig, extract, key: str) -> dict[str, np.ndarray]:
    """mu (K, F) and sigma (K, F, F) of each class's real images of the split, cached as an .npz."""
    def compute() -> dict[str, np.ndarray]:
        data = DATASETS.build(node)
        features, _ = extract(data.head(REFERENCE_IMAGES))
        y = data.y[:REFERENCE_IMAGES]
        per_class = [gaussian_statistics(features[y == k]) for k in range(data.classes)]
        return {"mu": np.stack([mu for mu, _ in per_class]), "sigma": np.stack([sigma for _, sigma in per_class])}

    return cached_arrays(cached(node, f"gantrain_stats_{node.name}_{key}_{node.get('split', 'train')}_classes.npz"),
                         compute)


def check_available(node: DictConfig, extractor: str, weights: Optional[str] = None,
                    inception_graph: Optional[str] = None, prefix: str = "eval.") -> None:
    """Before a run starts: what its evaluations with ``extractor`` need exists (or downloads now),
    so a missing file stops the command at once, not mid-run."""
    if extractor != "inception":
        return
    from gantrain.features import inception

    if inception_graph is not None:
        if not Path(inception_graph).expanduser().is_file():
            raise ConfigError(f"{prefix}inception_graph", f"no such file: {inception_graph}")
    else:
        inception.resolve_weights(weights)


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


def reference(node: DictConfig, extract, key: str) -> dict[str, np.ndarray]:
    """mu, sigma and up to 10,000 features of the real split, cached as an .npz."""
    def compute() -> dict[str, np.ndarray]:
        features, _ = extract(DATASETS.build(node).head(REFERENCE_IMAGES))
        mu, sigma = gaussian_statistics(features)
        keep = np.random.default_rng(0).choice(len(features), min(KID_FEATURES, len(features)), replace=False)
        return {"mu": mu, "sigma": sigma, "features": features[np.sort(keep)]}

    return cached_arrays(cached(node, f"gantrain_stats_{node.name}_{key}_{node.get('split', 'train')}.npz"), compute)


def cached_arrays(path: Path, compute) -> dict[str, np.ndarray]:
    """The arrays stored in the .npz ``path``, or ``compute()``'s, stored there first."""
    if path.is_file():
        with np.load(path) as stored:
            return dict(stored)
    arrays = compute()
    atomic_write(path, npz_bytes(**arrays))  # a cut-off write never leaves a truncated cache
    return arrays


def class_coverage(probs: np.ndarray) -> dict[str, float]:
    """``classes_hit``: classes predicted for at least one sample; ``class_kl``: KL(histogram of
    predicted classes || uniform)."""
    counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1])
    return {"classes_hit": int((counts > 0).sum()), "class_kl": kl_to_uniform(counts)}


def stacked_mode_metrics(node: DictConfig, samples: np.ndarray) -> dict[str, float]:
    """Modes (digit triples) covered by uint8 samples (N, 28, 28, 3), and KL to uniform over 1000."""
    mnist = OmegaConf.create({"name": "mnist", "path": node.get("path"), "split": "train"})
    model = classifier.load_or_train(mnist)
    digits = [classifier.predict_logits(model, samples[..., c : c + 1]).argmax(axis=1) for c in range(3)]
    triples = 100 * digits[0] + 10 * digits[1] + digits[2]
    counts = np.bincount(triples, minlength=1000)
    return {"modes": int((counts > 0).sum()), "mode_kl": kl_to_uniform(counts)}
