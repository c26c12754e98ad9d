"""The Inception extractors, with a randomly initialised InceptionV3 and a stand-in 2015 graph."""

import urllib.error

import numpy as np
import pytest
import tensorflow as tf

from gantrain.errors import ConfigError, GantrainError
from gantrain.evaluation.features import inception


def test_inputs_are_resized_to_299_rgb_in_minus_one_one():
    grey = np.full((2, 28, 28, 1), 255, np.uint8)
    x = inception.to_inception_input(tf.constant(grey)).numpy()
    assert x.shape == (2, 299, 299, 3)
    np.testing.assert_allclose(x, 1.0)
    ramp = np.tile(np.arange(0, 256, 8, dtype=np.uint8)[None, :, None, None], (1, 1, 32, 3))  # (1, 32, 32, 3)
    y = inception.to_inception_input(tf.constant(ramp)).numpy()
    assert y.min() >= -1.0 and y.max() <= 1.0 and y[0, 0, 0, 0] < y[0, -1, 0, 0]


def test_random_keras_inception_gives_pool_features_and_probabilities():
    extract = inception.keras_inception("random", batch_size=2)
    images = np.random.default_rng(0).integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8)
    features, probs = extract(images)
    assert features.shape == (3, 2048) and probs.shape == (3, 1000)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    features_grey, _ = extract(images[..., :1])  # greyscale is tiled to RGB
    assert features_grey.shape == (3, 2048)


def test_weights_from_the_keras_cache_or_a_given_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    cached = tmp_path / "models" / inception.WEIGHTS_FILE
    cached.parent.mkdir()
    cached.write_bytes(b"weights")
    assert inception.resolve_weights(None) == str(cached)
    assert inception.resolve_weights(str(cached)) == str(cached)
    with pytest.raises(ConfigError, match="^weights: no such file"):
        inception.resolve_weights(str(tmp_path / "missing.h5"))


def test_offline_without_weights_is_one_sentence(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(GantrainError) as err:
        inception.resolve_weights(None)
    message = str(err.value)
    assert "\n" not in message
    assert f"put {inception.WEIGHTS_FILE} in {tmp_path / 'models'}, or pass weights=<file.h5>" in message


def stand_in_graph(path):
    """A GraphDef with the 2015 graph's tensor names: ExpandDims (1, H, W, 3) -> pool_3 (1, 1, 1, 24)
    -> softmax/logits = MatMul(pool_3, weights) + biases -> softmax (1, 10)."""
    graph = tf.Graph()
    rng = np.random.default_rng(0)
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="ExpandDims")
        pooled = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # (1, 1, 1, 3)
        pool_3 = tf.tile(pooled, [1, 1, 1, 8], name="pool_3")  # (1, 1, 1, 24)
        with tf.name_scope("softmax"):
            weights = tf.constant(rng.normal(size=(24, 10)) / 100, tf.float32, name="weights")
            biases = tf.constant(rng.normal(size=10) * 3, tf.float32, name="biases")
            with tf.name_scope("logits"):
                logits = tf.nn.bias_add(tf.matmul(tf.reshape(pool_3, [1, 24]), weights, name="MatMul"), biases)
        tf.nn.softmax(logits, name="softmax")
    path.write_bytes(graph.as_graph_def().SerializeToString())
    return path, weights_value(graph), biases_value(graph)


def weights_value(graph):
    return tf.compat.v1.Session(graph=graph).run("softmax/weights:0")


def biases_value(graph):
    return tf.compat.v1.Session(graph=graph).run("softmax/biases:0")


def test_the_2015_graph_path(tmp_path):
    path, weights, biases = stand_in_graph(tmp_path / "g.pb")
    extract = inception.graph_inception(str(path), batch_size=2)
    images = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (0, 100, 200)])
    features, probs = extract(images)
    assert features.shape == (3, 24) and probs.shape == (3, 10)
    np.testing.assert_allclose(features[:, 0], [0, 100, 200])  # fed the raw 0-255 values
    # The papers' Inception Score: softmax(pool_3 . W), without the bias of softmax/logits.
    logits = features.astype(np.float64) @ weights
    expected = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, expected, rtol=1e-5)
    with_bias = np.exp(logits + biases) / np.exp(logits + biases).sum(axis=1, keepdims=True)
    assert np.abs(probs - with_bias).max() > 0.1  # the bias would change the numbers
    with pytest.raises(ConfigError, match="^inception_graph: .* is not a TensorFlow GraphDef"):
        inception.graph_inception(str(tmp_path / "bad.pb") if (tmp_path / "bad.pb").write_bytes(b"junk") else "")
    with pytest.raises(ConfigError, match="^inception_graph: no such file"):
        inception.graph_inception(str(tmp_path / "none.pb"))


def test_a_graph_without_the_2015_names_is_refused(tmp_path):
    graph = tf.Graph()
    with graph.as_default():
        x = tf.compat.v1.placeholder(tf.float32, [1, None, None, 3], name="ExpandDims")
        tf.reduce_mean(x, axis=[1, 2], keepdims=True, name="pool_3")
    (tmp_path / "other.pb").write_bytes(graph.as_graph_def().SerializeToString())
    with pytest.raises(ConfigError, match="^inception_graph: .* is not the 2015 Inception graph"):
        inception.graph_inception(str(tmp_path / "other.pb"))
