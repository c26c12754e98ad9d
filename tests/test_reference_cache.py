"""The cache of real-data statistics behind FID, KID and intra-FID: named by what they were
computed from (the data's content, its size and form, the extractor and its weights), and checked
against what a cached file says it holds before it is used."""

import logging

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from gantrain.data import DATASETS
from gantrain.evaluation.features import class_references, reference
from gantrain.evaluation.metrics import gaussian_statistics
from tests.conftest import fake_images


def pixel_features(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A cheap extractor: each image's pixel mean, standard deviation and corner pixel."""
    x = images.reshape(len(images), -1).astype(np.float64)
    features = np.stack([x.mean(axis=1), x.std(axis=1), x[:, 0]], axis=1)
    return features, np.full((len(images), 2), 0.5)


def own_statistics(node) -> np.ndarray:
    """The mean feature of the node's own real images, computed directly."""
    return gaussian_statistics(pixel_features(DATASETS.build(node).head())[0])[0]


def image_folder(root, seed: int, n: int = 12):
    root.mkdir(parents=True)
    for i, image in enumerate(fake_images(n, 40, 40, 3, seed=seed)):
        Image.fromarray(image).save(root / f"{i:03d}.png")
    return root


def digits_npz(path, seed: int):
    labels = np.arange(40, dtype=np.uint8) % 10
    np.savez(
        path,
        x_train=fake_images(40, 28, 28, seed=seed) // (1 + seed),
        y_train=labels,
        x_test=fake_images(10, 28, 28, seed=seed + 10),
        y_test=labels[:10],
    )
    return path


def test_one_folder_at_two_sizes_gets_two_sets_of_statistics(tmp_path):
    folder = image_folder(tmp_path / "pictures", seed=0)
    large = OmegaConf.create({"name": "folder", "path": str(folder), "resolution": 32, "channels": 3})
    small = OmegaConf.create({"name": "folder", "path": str(folder), "resolution": 8, "channels": 1})
    np.testing.assert_allclose(reference(large, pixel_features, "pixels")["mu"], own_statistics(large))
    np.testing.assert_allclose(reference(small, pixel_features, "pixels")["mu"], own_statistics(small))


def test_two_read_only_folders_do_not_share_statistics_in_the_keras_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    nodes = [
        OmegaConf.create({"name": "folder", "path": str(image_folder(tmp_path / name, seed)), "resolution": 16})
        for seed, name in enumerate(("a", "b"))
    ]
    for node in nodes:
        (tmp_path / node.path).chmod(0o555)
    try:
        for node in nodes:
            np.testing.assert_allclose(reference(node, pixel_features, "pixels")["mu"], own_statistics(node))
    finally:
        for node in nodes:
            (tmp_path / node.path).chmod(0o755)
    assert len(list((tmp_path / "keras_home" / "datasets").glob("gantrain_stats_folder_*.npz"))) == 2


def test_two_digit_files_in_one_folder_do_not_share_statistics(tmp_path):
    for seed, name in enumerate(("mine.npz", "theirs.npz")):
        node = OmegaConf.create({"name": "mnist", "path": str(digits_npz(tmp_path / name, seed)), "split": "train"})
        np.testing.assert_allclose(reference(node, pixel_features, "pixels")["mu"], own_statistics(node))
        per_class = class_references(node, pixel_features, "pixels")
        data = DATASETS.build(node)
        np.testing.assert_allclose(per_class["mu"][3], gaussian_statistics(pixel_features(data.x[data.y == 3])[0])[0])


def test_changed_data_gets_new_statistics(tmp_path):
    path = digits_npz(tmp_path / "mnist.npz", seed=0)
    node = OmegaConf.create({"name": "mnist", "path": str(path), "split": "train"})
    reference(node, pixel_features, "pixels")
    digits_npz(path, seed=1)  # the same file, rewritten with other images
    np.testing.assert_allclose(reference(node, pixel_features, "pixels")["mu"], own_statistics(node))


def test_an_old_format_cache_file_is_ignored(tmp_path, caplog):
    """Files named only by dataset, extractor and split say nothing of the data they came from."""
    path = digits_npz(tmp_path / "mnist.npz", seed=0)
    old = tmp_path / "gantrain_stats_mnist_pixels_train.npz"
    np.savez(old, mu=np.zeros(3), sigma=np.eye(3), features=np.zeros((2, 3)))
    node = OmegaConf.create({"name": "mnist", "path": str(path), "split": "train"})
    with caplog.at_level(logging.INFO, logger="gantrain.evaluation.features.stats_cache"):
        np.testing.assert_allclose(reference(node, pixel_features, "pixels")["mu"], own_statistics(node))
    assert f"ignoring {old}" in caplog.text


def test_a_cached_file_holding_other_statistics_is_recomputed(tmp_path):
    """What a file says it was computed from is checked on load, whatever its name."""
    mine = OmegaConf.create({"name": "mnist", "path": str(digits_npz(tmp_path / "mine.npz", 0)), "split": "train"})
    theirs = OmegaConf.create({"name": "mnist", "path": str(digits_npz(tmp_path / "theirs.npz", 1)), "split": "train"})
    reference(mine, pixel_features, "pixels")
    (mine_file,) = tmp_path.glob("gantrain_stats_*.npz")
    reference(theirs, pixel_features, "pixels")
    (their_file,) = set(tmp_path.glob("gantrain_stats_*.npz")) - {mine_file}
    their_file.replace(mine_file)
    np.testing.assert_allclose(reference(mine, pixel_features, "pixels")["mu"], own_statistics(mine))


def test_other_extractor_weights_get_other_statistics(tmp_path):
    node = OmegaConf.create({"name": "mnist", "path": str(digits_npz(tmp_path / "mnist.npz", 0)), "split": "train"})
    reference(node, pixel_features, "pixels", weights="one")
    doubled = lambda images: (2 * pixel_features(images)[0], pixel_features(images)[1])  # noqa: E731
    np.testing.assert_allclose(reference(node, doubled, "pixels", weights="two")["mu"], 2 * own_statistics(node))


def test_statistics_go_to_the_keras_cache_when_the_data_folder_cannot_be_written(tmp_path, monkeypatch):
    """A folder whose mode allows writing can still refuse them (a read-only mount, say)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    import gantrain.evaluation.features.stats_cache as cache

    node = OmegaConf.create({"name": "mnist", "path": str(digits_npz(tmp_path / "mnist.npz", 0)), "split": "train"})
    original = cache.atomic_write

    def read_only_mount(path, data):
        if path.parent == tmp_path:
            raise OSError(30, "Read-only file system", str(path))
        return original(path, data)

    monkeypatch.setattr(cache, "atomic_write", read_only_mount)
    np.testing.assert_allclose(reference(node, pixel_features, "pixels")["mu"], own_statistics(node))
    assert not list(tmp_path.glob("gantrain_stats_*.npz"))
    assert len(list((tmp_path / "keras_home" / "datasets").glob("gantrain_stats_mnist_*.npz"))) == 1
