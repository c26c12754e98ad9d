"""Inception features for FID, KID and IS on any images: Keras InceptionV3, or the original 2015
Inception graph of the TTUR/TF-GAN FID code.

- ``keras`` (default): ``keras.applications.InceptionV3`` with ImageNet weights; features are the
  2048-d global average pool, logits the 1000-way classifier before softmax. Images are converted
  to RGB (greyscale tiled), resized to 299x299 with ``tf.image.resize`` (bilinear, no
  antialiasing, as TF-GAN), and scaled to [-1, 1]. Weights come from ``weights=<file.h5>``, the
  Keras cache (~/.keras/models) or a download. Its FIDs compare between gantrain runs, not with
  papers.
- ``inception_graph=<classify_image_graph_def.pb>``: the 2015 graph used by the TTUR and TF-GAN
  FID implementations, which the published FIDs (and IS of Salimans et al.) were computed with:
  use it to compare with papers. Features ``pool_3:0`` (2048-d); probabilities softmax(pool_3 . W)
  with the weights of ``softmax/logits`` and without its bias, as the published Inception Score code
  (openai/improved-gan, TTUR) computes them. The graph resizes the uint8-range images itself.

Usage: ``extract = inception_extractor(weights=None)``; ``features, probs = extract(images)``.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from gantrain.data.files import download
from gantrain.errors import ConfigError

WEIGHTS_FILE = "inception_v3_weights_tf_dim_ordering_tf_kernels.h5"
WEIGHTS_URL = "https://storage.googleapis.com/tensorflow/keras-applications/inception_v3/" + WEIGHTS_FILE
SIZE = 299
LOGITS_MATMUL = "softmax/logits/MatMul"  # the 2015 graph's classifier: pool_3 . W (+ a bias)

Extractor = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]  # uint8 NHWC -> (features, probs)


def keras_models_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")).expanduser() / "models"


def resolve_weights(weights: str | None) -> str:
    """A given file, the Keras cache's copy, or a download into the cache; ``random`` leaves the
    network untrained (for tests: its numbers mean nothing)."""
    if weights == "random":
        return weights
    if weights is not None:
        if not Path(weights).expanduser().is_file():
            raise ConfigError("weights", f"no such file: {weights}")
        return str(Path(weights).expanduser())
    cached = keras_models_dir() / WEIGHTS_FILE
    if cached.is_file():
        return str(cached)
    return str(download(WEIGHTS_URL, WEIGHTS_FILE, "The InceptionV3 weights", keras_models_dir(), "weights=<file.h5>"))


def to_inception_input(images: tf.Tensor) -> tf.Tensor:
    """uint8 (B, H, W, 1 or 3) -> float32 (B, 299, 299, 3) in [-1, 1]."""
    x = tf.cast(images, tf.float32)
    if x.shape[-1] == 1:
        x = tf.tile(x, [1, 1, 1, 3])
    x = tf.image.resize(x, [SIZE, SIZE], method="bilinear", antialias=False)
    return x / 127.5 - 1.0


def keras_inception(weights: str | None = None, batch_size: int = 100) -> Extractor:
    """Keras InceptionV3: (pool features (N, 2048), softmax probabilities (N, 1000)); built, and
    its function traced, once per process for each version of the weights file (evaluations during
    training ask for it again and again)."""
    path = resolve_weights(weights)
    version = (0, 0) if path == "random" else (os.stat(path).st_size, os.stat(path).st_mtime_ns)
    return _keras_inception(path, version, batch_size)


@functools.lru_cache(maxsize=2)
def _keras_inception(path: str, version: tuple[int, int], batch_size: int) -> Extractor:
    model = keras.applications.InceptionV3(include_top=True, weights=None, classifier_activation=None)
    if path != "random":
        model.load_weights(path)
    both = keras.Model(model.input, [model.get_layer("avg_pool").output, model.output])

    # One trace for every batch size and image size (a last, smaller batch of the real data, 28- or
    # 32-pixel images): InceptionV3 takes seconds to trace. Greyscale is tiled to RGB first.
    @tf.function(input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)])
    def run(images):
        features, logits = both(to_inception_input(images), training=False)
        return features, tf.nn.softmax(logits)

    return _batched(lambda images: run(_rgb(images)), batch_size)


def graph_inception(graph_path: str, batch_size: int = 100) -> Extractor:
    """The 2015 Inception graph: (pool_3 features (N, 2048), softmax (N, 1008))."""
    path = Path(graph_path).expanduser()
    if not path.is_file():
        raise ConfigError("inception_graph", f"no such file: {path}")
    graph_def = tf.compat.v1.GraphDef()
    try:
        graph_def.ParseFromString(path.read_bytes())
    except Exception as err:  # noqa: BLE001 - protobuf's DecodeError and friends
        raise ConfigError("inception_graph", f"{path} is not a TensorFlow GraphDef ({err})") from None

    def imported():
        tf.compat.v1.import_graph_def(graph_def, name="")

    wrapped = tf.compat.v1.wrap_function(imported, [])
    graph = wrapped.graph
    try:
        for name in ("ExpandDims:0", "pool_3:0"):
            graph.get_tensor_by_name(name)
        # The published Inception Score code (openai/improved-gan, TTUR) takes the logits as
        # pool_3 . W with the weights of softmax/logits and no bias; so does gantrain.
        weights = graph.get_operation_by_name(LOGITS_MATMUL).inputs[1]
    except (KeyError, ValueError, IndexError) as err:
        raise ConfigError(
            "inception_graph", f"{path} is not the 2015 Inception graph ({str(err).splitlines()[0]})"
        ) from None
    run_one = wrapped.prune(feeds="ExpandDims:0", fetches="pool_3:0")
    w = wrapped.prune(feeds=[], fetches=weights.name)()

    def run(images):
        # The graph was frozen for one image at a time (its reshapes fix the batch at 1).
        pool = tf.concat(
            [tf.reshape(run_one(tf.cast(image[None], tf.float32)), [1, -1]) for image in tf.unstack(images)], 0
        )
        return pool, tf.nn.softmax(tf.matmul(pool, w))

    return _batched(lambda images: run(_rgb(images)), batch_size)


def _rgb(images: tf.Tensor) -> tf.Tensor:
    return tf.tile(images, [1, 1, 1, 3]) if images.shape[-1] == 1 else images


def _batched(run, batch_size: int) -> Extractor:
    def extract(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, probs = [], []
        for i in range(0, len(images), batch_size):
            f, p = run(tf.convert_to_tensor(images[i : i + batch_size]))
            features.append(np.asarray(f))
            probs.append(np.asarray(p))
        return np.concatenate(features), np.concatenate(probs)

    return extract
