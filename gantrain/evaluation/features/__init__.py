"""Feature extractors for image metrics, and the metrics ``gantrain-eval`` reports with them.

Extractors (``features=``): ``classifier`` — gantrain's own small CNN for 28x28 data (offline;
the default for MNIST and Fashion-MNIST; "classifier FID" etc. compare between gantrain runs, not
with papers); ``inception`` — Keras InceptionV3 or the 2015 Inception graph (the default for other
images; :mod:`gantrain.evaluation.features.inception`). Each gives FID, KID, Inception Score, precision,
recall, density and coverage against the real data, whose reference statistics and features are
computed once and cached beside the data, named by what they were computed from
(:mod:`gantrain.evaluation.features.stats_cache`); the classifier adds class coverage.

``stacked_mnist``: the MNIST classifier reads each channel; ``modes`` counts the digit triples
(of 1000) among the samples and ``mode_kl`` is KL(triple histogram || uniform), as in VEEGAN/PacGAN.

Conditional runs (samples drawn for given ``labels``) add, with the classifier, ``class_accuracy``
(the share of samples classified as the class they were drawn for) and ``intra_fid`` (the mean over
classes of the FID between that class's samples and that class's real images, as in Miyato &
Koyama 2018, with the classifier's features).

Usage: ``image_metrics(cfg.dataset, samples)`` -> ``{"fid", "kid", "kid_std", "is", "is_std", ...}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gantrain.errors import ConfigError
from gantrain.evaluation.features import classifier
from gantrain.evaluation.features.stats_cache import (
    arrays_digest,
    cache_dir,
    cached,
    class_references,
    file_digest,
    reference,
)
from gantrain.evaluation.metrics import (
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
    kl_to_uniform,
    sample_quality,
)
from gantrain.evaluation.plan import kind_of

__all__ = [
    "cache_dir",
    "cached",
    "class_references",
    "reference",
    "image_metrics",
    "check_available",
    "class_coverage",
    "conditional_metrics",
    "stacked_mode_metrics",
    "triple_metrics",
    "extractor_identity",
    "feature_extractor",
]


def image_metrics(
    node: DictConfig,
    samples: np.ndarray,
    extractor: str,
    weights: str | None = None,
    inception_graph: str | None = None,
    labels: np.ndarray | None = None,
) -> dict[str, float]:
    """Metrics of uint8 samples (N, H, W, C) of a run on the dataset ``node`` with ``extractor``
    (``classifier`` or ``inception``, as :func:`gantrain.evaluation.plan.evaluation_plan` resolves it);
    ``labels`` (N,): the classes a conditional run drew the samples for."""
    if kind_of(node.name) == "stacked":
        return stacked_mode_metrics(node, samples)
    extract, key, fingerprint = feature_extractor(node, extractor, weights, inception_graph)
    ref = reference(node, extract, key, fingerprint)
    f, probs = extract(samples)
    kid, kid_std = kernel_inception_distance(f, ref["features"], subset_size=min(1000, len(f)))
    score, score_std = inception_score(probs, splits=min(10, len(probs)))
    result = {
        "fid": frechet_distance(*gaussian_statistics(f), ref["mu"], ref["sigma"]),
        "kid": kid,
        "kid_std": kid_std,
        "is": score,
        "is_std": score_std,
        **sample_quality(ref["features"], f),
    }
    if extractor == "classifier":
        result.update(class_coverage(probs))
        if labels is not None:
            result.update(conditional_metrics(f, probs, labels, class_references(node, extract, key, fingerprint)))
    return result


def feature_extractor(node: DictConfig, extractor: str, weights: str | None = None, inception_graph: str | None = None):
    """(extract, its name, a fingerprint of its weights): the weights name the cached statistics
    as much as the data does, since other weights give other features."""
    key, fingerprint = extractor_identity(node, extractor, weights, inception_graph)
    if extractor == "classifier":
        model = classifier.load_or_train(node)
        return (lambda images: classifier.embed(model, images)), key, fingerprint
    from gantrain.evaluation.features import inception

    if inception_graph is not None:
        return inception.graph_inception(inception_graph), key, fingerprint
    return inception.keras_inception(weights), key, fingerprint


def extractor_identity(
    node: DictConfig, extractor: str, weights: str | None = None, inception_graph: str | None = None
) -> tuple[str, str]:
    """(the extractor's name, a fingerprint of its weights), without building an Inception network."""
    if extractor == "classifier":
        return "classifier", arrays_digest(classifier.load_or_train(node).get_weights())
    if inception_graph is not None:
        return "inception2015", file_digest(Path(inception_graph).expanduser())
    if weights == "random":
        # Untrained weights differ on every build and their numbers mean nothing (tests only).
        return "inception_random", "random"
    from gantrain.evaluation.features import inception

    return "inception", file_digest(inception.resolve_weights(weights))


def conditional_metrics(
    features: np.ndarray, probs: np.ndarray, labels: np.ndarray, references: dict[str, np.ndarray]
) -> dict[str, float]:
    """``class_accuracy`` and ``intra_fid`` of samples drawn for ``labels``, against per-class
    real statistics ``references`` (``mu`` (K, F), ``sigma`` (K, F, F))."""
    distances = [
        frechet_distance(*gaussian_statistics(features[labels == k]), references["mu"][k], references["sigma"][k])
        for k in np.unique(labels)
    ]
    return {"class_accuracy": float((probs.argmax(axis=1) == labels).mean()), "intra_fid": float(np.mean(distances))}


def check_available(
    node: DictConfig,
    extractor: str,
    weights: str | None = None,
    inception_graph: str | None = None,
    prefix: str = "eval.",
) -> None:
    """Before a run starts: what its evaluations with ``extractor`` need exists (or downloads now),
    so a missing file stops the command at once, not mid-run."""
    if extractor != "inception":
        return
    from gantrain.evaluation.features import inception

    if inception_graph is not None:
        if not Path(inception_graph).expanduser().is_file():
            raise ConfigError(f"{prefix}inception_graph", f"no such file: {inception_graph}")
    else:
        inception.resolve_weights(weights)


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
    return triple_metrics(np.stack(digits, axis=1))


def triple_metrics(digits: np.ndarray) -> dict[str, float]:
    """``modes``: the digit triples (N, 3) seen, of 1000; ``mode_kl``: KL(their histogram || uniform)."""
    counts = np.bincount(100 * digits[:, 0] + 10 * digits[:, 1] + digits[:, 2], minlength=1000)
    return {"modes": int((counts > 0).sum()), "mode_kl": kl_to_uniform(counts)}
