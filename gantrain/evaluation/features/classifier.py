"""A small CNN classifier trained by gantrain on the dataset's own training split: the offline
feature extractor for 28x28 data (MNIST, Fashion-MNIST, and each channel of stacked MNIST).

Two conv blocks (32, 64 filters) and a 128-unit feature layer, trained with Adam for a few epochs:
>= 99 % test accuracy on MNIST (``scripts/classifier_benchmark.py``). The trained model is cached
next to the data (or in the Keras cache when that directory is read-only), named by a digest of the
training images and labels, and reused; a copy already beside the data is used even in a
read-only folder. The classifier of real MNIST ships with gantrain (``classifier_mnist_<digest>.keras``).

Usage: ``model = load_or_train(cfg.dataset)``; ``features, probs = embed(model, images)``.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import math
import os
from pathlib import Path
from typing import cast

import keras
import numpy as np
from keras import layers
from omegaconf import DictConfig, OmegaConf
from tqdm import tqdm

from gantrain.data import DATASETS
from gantrain.errors import ConfigError, GantrainError
from gantrain.evaluation.plan import kind_of
from gantrain.run.directory import temporary_path

log = logging.getLogger(__name__)

FEATURE_LAYER = "features"
# Classifiers gantrain ships, trained by fit() on the real dataset (MNIST), named by the same
# fingerprint as the cache: the first evaluation loads one instead of training for minutes, and
# every machine measures with the same features. classifier_<name>.json records each one's provenance.
SHIPPED = Path(__file__).parent


def build(num_classes: int = 10, channels: int = 1) -> keras.Model:
    """uint8-range images (B, 28, 28, channels) -> class logits (B, num_classes)."""
    x = keras.Input((28, 28, channels))
    h = layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    for filters in (32, 64):
        h = layers.Conv2D(filters, 3, activation="relu")(h)
        h = layers.Conv2D(filters, 3, activation="relu")(h)
        h = layers.MaxPooling2D()(h)
    h = layers.Dropout(0.25)(layers.Flatten()(h))
    h = layers.Dense(128, activation="relu", name=FEATURE_LAYER)(h)
    logits = layers.Dense(num_classes)(layers.Dropout(0.5)(h))
    return keras.Model(x, logits, name="classifier")


def fit(
    model: keras.Model, x: np.ndarray, y: np.ndarray, epochs: int = 3, batch_size: int = 128, seed: int = 0
) -> None:
    keras.utils.set_random_seed(seed)
    model.compile(
        optimizer=keras.optimizers.Adam(1e-3),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    with tqdm(total=epochs * math.ceil(len(x) / batch_size), unit="batch", desc="classifier", leave=False) as bar:
        model.fit(
            x.astype(np.float32),
            y.astype(np.int64),
            epochs=epochs,
            batch_size=batch_size,
            verbose=0,
            callbacks=[keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: bar.update())],
        )


def accuracy(model: keras.Model, x: np.ndarray, y: np.ndarray) -> float:
    return float((predict_logits(model, x).argmax(axis=1) == y).mean())


def predict_logits(model: keras.Model, x: np.ndarray, batch_size: int = 1000) -> np.ndarray:
    return np.concatenate(
        [model(x[i : i + batch_size].astype(np.float32), training=False).numpy() for i in range(0, len(x), batch_size)]
    )


def embed(model: keras.Model, images: np.ndarray, batch_size: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, 128), class probabilities (N, K)) of uint8 images (N, 28, 28, C)."""
    both = keras.Model(model.input, [model.get_layer(FEATURE_LAYER).output, model.output])
    features, probs = [], []
    for i in range(0, len(images), batch_size):
        f, logits = both(images[i : i + batch_size].astype(np.float32), training=False)
        features.append(f.numpy())
        probs.append(keras.ops.convert_to_numpy(keras.ops.softmax(logits)))
    return np.concatenate(features), np.concatenate(probs)


def fingerprint(data_digest: str, epochs: int) -> str:
    """What a trained classifier is named by: the digest of its training data, and its epochs."""
    return hashlib.sha256(f"{data_digest} epochs={epochs}".encode()).hexdigest()[:16]


def loaded(path: Path) -> keras.Model:
    """The classifier in ``path``, read once per process for each version of the file (evaluations
    during training, and the protocol card's fingerprint, ask for it again and again)."""
    stat = path.stat()
    return _loaded(str(path), stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=4)
def _loaded(path: str, size: int, mtime_ns: int) -> keras.Model:
    return keras.models.load_model(path)


def load_or_train(node: DictConfig, epochs: int = 3) -> keras.Model:
    """The shipped or cached classifier for the dataset ``node`` (mnist or fashion_mnist), trained
    on its training split the first time."""
    if kind_of(node.name) != "digits":
        raise ConfigError("features", f"the classifier is trained on mnist or fashion_mnist, not {node.name}")
    from gantrain.evaluation.features.stats_cache import (
        cached,
        data_digest,
        note_ignored,
    )

    train_node = cast(DictConfig, OmegaConf.merge(node, {"split": "train"}))
    # Named by the training images and labels it learnt from: another file of the same dataset
    # (or the same file changed) gets its own classifier.
    key = fingerprint(data_digest(train_node)[0], epochs)
    if (SHIPPED / f"classifier_{node.name}_{key}.keras").is_file():
        return loaded(SHIPPED / f"classifier_{node.name}_{key}.keras")
    path = cached(node, f"gantrain_classifier_{node.name}_{key}.keras")
    old = cached(node, f"gantrain_classifier_{node.name}.keras")
    if old.is_file():
        note_ignored(old, "an old-format cache that does not record what data it was trained on; training anew")
    if path.is_file():
        return loaded(path)
    train = DATASETS.build(train_node)
    if train.y is None:
        raise GantrainError(
            f"the classifier needs labels: {node.get('path') or node.name} has none for the train split"
        )
    log.info(
        "training the %s feature classifier once (%d images, %d epochs: 4 to 10 minutes on 2 CPU cores, the "
        "classifier bar shows how long here; cached as %s)",
        node.name,
        len(train.x),
        epochs,
        path,
    )
    model = build(int(train.y.max()) + 1)
    fit(model, train.x, train.y, epochs=epochs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_path(path)
    try:
        model.save(tmp)
        os.replace(tmp, path)  # never a half-written cache
    finally:
        tmp.unlink(missing_ok=True)
    return model
