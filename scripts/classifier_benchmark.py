"""The MNIST classifier behind gantrain's offline metrics: its test accuracy, and the classifier
FID / KID / Inception Score of real and of noise images, side by side.

Trains the classifier on the training split (as ``gantrain-eval`` does on first use), then scores
10,000 training images against the 10,000 test images (real vs real: small), and 10,000 uniform
noise images and 10,000 blank images against the test images (far worse).

Usage: ``python scripts/classifier_benchmark.py --data ../shared/data/mnist.npz [--epochs 3]``
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from omegaconf import OmegaConf  # noqa: E402

from gantrain.data import DATASETS  # noqa: E402
from gantrain.evaluation.features import classifier  # noqa: E402
from gantrain.evaluation.metrics import (  # noqa: E402
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="mnist.npz (Keras layout) or a folder of the IDX files")
    parser.add_argument("--epochs", type=int, default=3)
    args = parser.parse_args()
    node = OmegaConf.create({"name": "mnist", "path": args.data})
    train = DATASETS.build(OmegaConf.merge(node, {"split": "train"}))
    test = DATASETS.build(OmegaConf.merge(node, {"split": "test"}))

    start = time.perf_counter()
    model = classifier.build()
    classifier.fit(model, train.x, train.y, epochs=args.epochs)
    print(f"trained {args.epochs} epochs on {len(train.x)} images in {time.perf_counter() - start:.0f} s")
    print(f"test accuracy: {100 * classifier.accuracy(model, test.x, test.y):.2f} %")

    rng = np.random.default_rng(0)
    test_features, _ = classifier.embed(model, test.x)
    reference = gaussian_statistics(test_features)
    candidates = {
        "10k training images": train.x[rng.choice(len(train.x), 10_000, replace=False)],
        "uniform noise images": rng.integers(0, 256, size=(10_000, 28, 28, 1), dtype=np.uint8),
        "blank images": np.zeros((10_000, 28, 28, 1), np.uint8),
    }
    print(f"\n{'vs the 10k test images':<24} {'classifier FID':>15} {'KID':>10} {'IS':>6} {'classes hit':>12}")
    for name, images in candidates.items():
        features, probs = classifier.embed(model, images)
        fid = frechet_distance(*gaussian_statistics(features), *reference)
        kid, _ = kernel_inception_distance(features, test_features)
        score, _ = inception_score(probs)
        hit = len(np.unique(probs.argmax(axis=1)))
        print(f"{name:<24} {fid:>15.3f} {kid:>10.4f} {score:>6.2f} {hit:>12}")


if __name__ == "__main__":
    main()
