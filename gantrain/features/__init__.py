"""Feature extractors for image metrics, and the metrics ``gantrain-eval`` reports with them.

``classifier`` (offline; MNIST and Fashion-MNIST): FID, KID and Inception Score on the features and
predictions of gantrain's own small CNN ("classifier FID" etc.: comparable between gantrain runs,
not with papers' Inception numbers), and class coverage. Reference statistics of the real data are
computed once per dataset, extractor and split, and cached beside the classifier.

``stacked_mnist``: the MNIST classifier reads each channel; ``modes`` counts the digit triples
(of 1000) among the samples and ``mode_kl`` is KL(triple histogram || uniform), as in VEEGAN/PacGAN.

Usage: ``classifier_metrics(cfg.dataset, samples)`` -> ``{"fid", "kid", "kid_std", "is", ...}``;
``stacked_mode_metrics(cfg.dataset, samples)`` -> ``{"modes", "mode_kl"}``.
"""

from __future__ import annotations

import os

import numpy as np
from omegaconf import DictConfig, OmegaConf

from gantrain.data import DATASETS
from gantrain.features import classifier
from gantrain.metrics import frechet_distance, gaussian_statistics, inception_score, kernel_inception_distance

KID_FEATURES = 10_000  # real features kept for KID


def reference(node: DictConfig, model, extractor: str = "classifier") -> dict[str, np.ndarray]:
    """mu, sigma and up to 10,000 features of the real split, cached as an .npz."""
    path = classifier.cache_path(node).with_name(f"gantrain_stats_{node.name}_{extractor}_{node.get('split', 'train')}.npz")
    if path.is_file():
        with np.load(path) as cached:
            return dict(cached)
    real = DATASETS.build(node).x
    features, _ = classifier.embed(model, real)
    mu, sigma = gaussian_statistics(features)
    keep = np.random.default_rng(0).choice(len(features), min(KID_FEATURES, len(features)), replace=False)
    stats = {"mu": mu, "sigma": sigma, "features": features[np.sort(keep)]}
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, **stats)
    os.replace(tmp, path)
    return stats


def class_coverage(probs: np.ndarray) -> dict[str, float]:
    """``classes_hit``: classes predicted for at least one sample; ``class_kl``: KL(histogram of
    predicted classes || uniform)."""
    k = probs.shape[1]
    counts = np.bincount(probs.argmax(axis=1), minlength=k)
    q = counts[counts > 0] / counts.sum()
    return {"classes_hit": int((counts > 0).sum()), "class_kl": float(np.sum(q * np.log(q * k)))}


def classifier_metrics(node: DictConfig, samples: np.ndarray) -> dict[str, float]:
    """Metrics of uint8 samples (N, 28, 28, 1) of a run on ``node`` (mnist or fashion_mnist)."""
    model = classifier.load_or_train(node)
    ref = reference(node, model)
    features, probs = classifier.embed(model, samples)
    kid, kid_std = kernel_inception_distance(features, ref["features"], num_subsets=100,
                                             subset_size=min(1000, len(features)))
    score, score_std = inception_score(probs, splits=min(10, len(probs)))
    return {
        "fid": frechet_distance(*gaussian_statistics(features), ref["mu"], ref["sigma"]),
        "kid": kid, "kid_std": kid_std, "is": score, "is_std": score_std,
        **class_coverage(probs),
    }


def stacked_mode_metrics(node: DictConfig, samples: np.ndarray) -> dict[str, float]:
    """Modes (digit triples) covered by uint8 samples (N, 28, 28, 3), and KL to uniform over 1000."""
    mnist = OmegaConf.create({"name": "mnist", "path": node.get("path"), "split": "train"})
    model = classifier.load_or_train(mnist)
    digits = [classifier.predict_logits(model, samples[..., c : c + 1]).argmax(axis=1) for c in range(3)]
    triples = 100 * digits[0] + 10 * digits[1] + digits[2]
    counts = np.bincount(triples, minlength=1000)
    q = counts[counts > 0] / counts.sum()
    return {"modes": int((counts > 0).sum()), "mode_kl": float(np.sum(q * np.log(q * 1000)))}
