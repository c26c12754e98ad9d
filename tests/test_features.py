"""gantrain's classifier: trained on the dataset's own split, cached, and the metrics built on it."""

import numpy as np
import pytest
from omegaconf import OmegaConf

from gantrain.evaluation.features import class_coverage, classifier, image_metrics


def pattern_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """28x28 images whose class k is a bright bar at rows 2k+4..2k+6, on faint noise: learnable in
    seconds, like MNIST in format."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n).astype(np.uint8)
    x = rng.integers(0, 40, size=(n, 28, 28), dtype=np.uint8)
    for i, k in enumerate(y):
        x[i, 2 * k + 4 : 2 * k + 7, 4:24] = 255
    return x, y


@pytest.fixture
def pattern_npz(tmp_path):
    (x_train, y_train), (x_test, y_test) = pattern_digits(600, 0), pattern_digits(200, 1)
    path = tmp_path / "data" / "mnist.npz"
    path.parent.mkdir()
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    return path


def test_classifier_is_trained_once_and_cached_next_to_the_data(pattern_npz):
    node = OmegaConf.create({"name": "mnist", "path": str(pattern_npz), "split": "train"})
    model = classifier.load_or_train(node)
    (cached,) = pattern_npz.parent.glob("gantrain_classifier_mnist_*.keras")
    x_test, y_test = pattern_digits(200, 1)
    assert classifier.accuracy(model, x_test[..., None], y_test) >= 0.95
    stamp = cached.stat().st_mtime_ns
    again = classifier.load_or_train(node)
    assert cached.stat().st_mtime_ns == stamp  # loaded, not retrained
    np.testing.assert_allclose(
        classifier.predict_logits(again, x_test[..., None]),
        classifier.predict_logits(model, x_test[..., None]),
        rtol=1e-5,
        atol=1e-5,
    )


def test_the_shipped_mnist_classifier_is_the_one_its_provenance_names():
    """Named by the fingerprint load_or_train computes for the data it records (real MNIST's training
    split, at load_or_train's epochs), with the bytes it records and build()'s layers."""
    import inspect
    import json

    import keras

    from gantrain.evaluation.features.stats_cache import file_digest

    record = json.loads((classifier.SHIPPED / "classifier_mnist.json").read_text())
    assert record["epochs"] == inspect.signature(classifier.load_or_train).parameters["epochs"].default
    assert record["file"] == f"classifier_mnist_{classifier.fingerprint(record['data_digest'], record['epochs'])}.keras"
    assert file_digest(classifier.SHIPPED / record["file"]) == record["sha256"]
    assert record["test_accuracy"] >= 0.99
    shipped = keras.models.load_model(classifier.SHIPPED / record["file"])
    assert [w.shape for w in shipped.get_weights()] == [w.shape for w in classifier.build().get_weights()]


def test_a_shipped_classifier_of_the_same_data_is_used_instead_of_training(pattern_npz, tmp_path, monkeypatch):
    """Real MNIST is not needed: the shipped file, placed where the shipped classifiers live under the
    fingerprint of these digits, is what load_or_train returns, and nothing is trained or cached."""
    import shutil

    import keras

    from gantrain.evaluation.features.stats_cache import data_digest

    node = OmegaConf.create({"name": "mnist", "path": str(pattern_npz), "split": "train"})
    (shipped,) = classifier.SHIPPED.glob("classifier_mnist_*.keras")
    monkeypatch.setattr(classifier, "SHIPPED", tmp_path / "shipped")
    classifier.SHIPPED.mkdir()
    shutil.copy(
        shipped, classifier.SHIPPED / f"classifier_mnist_{classifier.fingerprint(data_digest(node)[0], 3)}.keras"
    )
    model = classifier.load_or_train(node)
    assert list(pattern_npz.parent.glob("gantrain_classifier_*")) == []
    x_test, _ = pattern_digits(20, 1)
    np.testing.assert_array_equal(
        classifier.predict_logits(model, x_test[..., None]),
        classifier.predict_logits(keras.models.load_model(shipped), x_test[..., None]),
    )


def test_each_digit_file_gets_its_own_classifier(pattern_npz):
    """Two MNIST-format files in one folder: the second's classifier learns the second's classes."""
    (x_train, y_train), (x_test, y_test) = pattern_digits(600, 0), pattern_digits(200, 1)
    other = pattern_npz.with_name("reversed.npz")  # the same bars, the class numbers reversed
    np.savez(other, x_train=x_train, y_train=9 - y_train, x_test=x_test, y_test=9 - y_test)
    classifier.load_or_train(OmegaConf.create({"name": "mnist", "path": str(pattern_npz)}))
    model = classifier.load_or_train(OmegaConf.create({"name": "mnist", "path": str(other)}))
    assert classifier.accuracy(model, x_test[..., None], 9 - y_test) >= 0.95


def test_real_images_score_far_better_than_noise(pattern_npz):
    node = OmegaConf.create({"name": "mnist", "path": str(pattern_npz), "split": "train"})
    real = pattern_digits(300, 2)[0][..., None]
    noise = np.random.default_rng(3).integers(0, 256, size=(300, 28, 28, 1), dtype=np.uint8)
    good, bad = image_metrics(node, real, "classifier"), image_metrics(node, noise, "classifier")
    assert list(pattern_npz.parent.glob("gantrain_stats_mnist_classifier_train_*.npz"))  # reference cached
    assert good["fid"] * 10 < bad["fid"]
    assert good["kid"] < bad["kid"]
    assert good["classes_hit"] == 10 and good["class_kl"] < 0.05
    assert good["is"] > 8 > bad["is"]


def test_class_coverage():
    probs = np.eye(10)[[0, 0, 1, 1]]
    assert class_coverage(probs) == {"classes_hit": 2, "class_kl": pytest.approx(np.log(5))}
    assert class_coverage(np.eye(10))["class_kl"] == pytest.approx(0.0)


def test_the_classifier_needs_a_dataset_it_knows(tmp_path):
    from gantrain.errors import ConfigError

    with pytest.raises(ConfigError, match="^features: the classifier is trained on mnist or fashion_mnist"):
        classifier.load_or_train(OmegaConf.create({"name": "cifar10", "path": None}))


def test_stacked_mnist_modes(pattern_npz):
    from gantrain.data import DATASETS
    from gantrain.evaluation.features import stacked_mode_metrics

    node = OmegaConf.create({"name": "stacked_mnist", "path": str(pattern_npz), "num_points": 3000})
    data = DATASETS.build(node)
    assert data.x.shape == (3000, 28, 28, 3) and data.y.max() < 1000
    x_train, y_train = pattern_digits(600, 0)
    # each channel is one training digit, and the label spells the three digits
    first = data.x[0]
    for c, digit in enumerate((data.y[0] // 100, data.y[0] // 10 % 10, data.y[0] % 10)):
        assert any((first[..., c] == img).all() and lab == digit for img, lab in zip(x_train, y_train, strict=True))
    covered = stacked_mode_metrics(node, data.x)
    assert covered["modes"] > 900 and covered["mode_kl"] < 0.5  # 3000 draws of 1000 triples
    one = stacked_mode_metrics(node, np.repeat(data.x[:1], 100, axis=0))
    assert one == {"modes": 1, "mode_kl": pytest.approx(np.log(1000))}


def test_a_read_only_data_folder_is_left_alone(pattern_npz, tmp_path, monkeypatch):
    from gantrain.evaluation.features import cache_dir

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    node = OmegaConf.create({"name": "mnist", "path": str(pattern_npz)})
    assert cache_dir(node) == pattern_npz.parent
    classifier.load_or_train(node)  # cached beside the data
    (trained,) = pattern_npz.parent.glob("gantrain_classifier_mnist_*.keras")
    pattern_npz.parent.chmod(0o555)
    try:
        assert cache_dir(node) == tmp_path / "keras" / "datasets"
        classifier.load_or_train(node)  # read from the read-only folder, not trained again elsewhere
        assert not (tmp_path / "keras" / "datasets" / trained.name).exists()
    finally:
        pattern_npz.parent.chmod(0o755)


def test_a_perfect_stacked_mnist_sampler_covers_the_1000_modes_on_26000_samples():
    """VEEGAN/PacGAN count modes on 26,000 samples: a sampler uniform over the triples finds all 1000
    there, and about 920 on 2,500 (as the evaluation guide says). The counting on digits as
    ``stacked_mode_metrics`` reads them; the classifier's reading is test_stacked_mnist_modes's."""
    from gantrain.evaluation.features import triple_metrics
    from gantrain.evaluation.plan import default_num_samples

    n = default_num_samples("stacked_mnist")
    assert n == 26_000
    rng = np.random.default_rng(1)
    result = triple_metrics(rng.integers(0, 10, (n, 3)))
    assert result["modes"] == 1000 and result["mode_kl"] < 0.03
    assert 900 < triple_metrics(rng.integers(0, 10, (2500, 3)))["modes"] < 940


def test_stacked_mnist_runs_are_evaluated_on_the_default_count_unless_told(
    pattern_npz, tmp_path, make_cfg, monkeypatch
):
    """An evaluation during training and gantrain-eval both draw default_num_samples (26,000 for stacked
    MNIST, checked above with a perfect sampler) unless given a count. Here the default is scaled down
    a hundredfold where both callers read it, so the test follows the count, not the 26,000-sample cost."""
    import gantrain.evaluation.measure
    import gantrain.run.duties
    import gantrain.run.train
    from gantrain.evaluation.measure import evaluate
    from gantrain.evaluation.plan import default_num_samples
    from gantrain.run.train import train
    from tests.conftest import TINY

    for module in (gantrain.run.train, gantrain.evaluation.measure):
        monkeypatch.setattr(module, "default_num_samples", lambda dataset: default_num_samples(dataset) // 100)
    drawn = []
    original = gantrain.run.duties.draw
    monkeypatch.setattr(
        gantrain.run.duties, "draw", lambda g, n, seed, **kw: drawn.append(n) or original(g, n, seed, **kw)
    )
    run = tmp_path / "run"
    train(
        make_cfg(
            "model=dcgan",
            *TINY["dcgan"],
            "dataset=stacked_mnist",
            f"dataset.path={pattern_npz}",
            "dataset.num_points=200",
            "train.steps=1",
            "train.batch_size=4",
            "train.n_critic=1",
            "eval.every=1",
        ),
        run,
    )
    assert drawn == [260]
    assert evaluate(run)["num_samples"] == 260
    assert evaluate(run, num_samples=300)["num_samples"] == 300
