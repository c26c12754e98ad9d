"""Loaders for each official format, the search order, downloads, and bad files."""

import gzip
import tarfile
import urllib.error

import numpy as np
import pytest
from omegaconf import OmegaConf

from gantrain.data import DATASETS, mnist
from gantrain.data.toys import grid25_centers, ring8_centers
from gantrain.errors import ConfigError, GantrainError
from tests.conftest import fake_images, write_cifar_batches, write_idx


def load(name, **options):
    return DATASETS.build(OmegaConf.create({"name": name, **options}))


@pytest.fixture(autouse=True)
def isolated_data_dirs(tmp_path, monkeypatch):
    """No real cache or data dir leaks into a test."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    monkeypatch.delenv("GANTRAIN_DATA_DIR", raising=False)


def test_mnist_npz(mnist_npz):
    ds = load("mnist", path=str(mnist_npz))
    expected = np.load(mnist_npz)["x_train"]
    assert ds.x.dtype == np.uint8 and ds.shape == (28, 28, 1) and ds.is_image
    np.testing.assert_array_equal(ds.x[..., 0], expected)
    np.testing.assert_array_equal(ds.y, np.load(mnist_npz)["y_train"])
    assert len(load("mnist", path=str(mnist_npz), split="test").x) == 16


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("name", ["mnist", "fashion_mnist"])
def test_idx_files_in_a_directory(tmp_path, name, suffix):
    images = fake_images(10, 28, 28)
    write_idx(tmp_path / f"train-images-idx3-ubyte{suffix}", images)
    write_idx(tmp_path / f"train-labels-idx1-ubyte{suffix}", np.arange(10))
    write_idx(tmp_path / f"t10k-images-idx3-ubyte{suffix}", images[:3])
    ds = load(name, path=str(tmp_path))
    np.testing.assert_array_equal(ds.x[..., 0], images)
    np.testing.assert_array_equal(ds.y, np.arange(10))  # the labels file beside the images
    test = load(name, path=str(tmp_path), split="test")
    assert len(test.x) == 3 and test.y is None  # no t10k labels file: no labels


def test_single_idx_file(tmp_path):
    images = fake_images(5, 28, 28)
    write_idx(tmp_path / "imgs.gz", images)
    np.testing.assert_array_equal(load("mnist", path=str(tmp_path / "imgs.gz")).x[..., 0], images)


def test_truncated_idx_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    write_idx(path, fake_images(5, 28, 28))
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ConfigError, match=r"^dataset\.path: .*train-images-idx3-ubyte is truncated"):
        load("mnist", path=str(path))


def test_truncated_gzip_is_named(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte.gz"
    write_idx(path, fake_images(50, 28, 28))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ConfigError, match=r"^dataset\.path: .*cannot be read"):
        load("mnist", path=str(path))


def test_wrong_image_shape_is_named(tmp_path):
    path = tmp_path / "x.npz"
    np.savez(path, x_train=fake_images(4, 32, 32))
    with pytest.raises(ConfigError, match=r"expected uint8 images of shape \(N, 28, 28\), found uint8 \(4, 32, 32\)"):
        load("mnist", path=str(path))


def test_not_an_npz(tmp_path):
    path = tmp_path / "mnist.npz"
    path.write_text("hello")
    with pytest.raises(ConfigError, match="not a readable .npz"):
        load("mnist", path=str(path))


def test_missing_path_is_named(tmp_path):
    with pytest.raises(ConfigError, match=r"^dataset\.path: no such file or directory"):
        load("mnist", path=str(tmp_path / "nope.npz"))


def test_search_order_data_dir_before_keras_cache(tmp_path, monkeypatch):
    data_dir, cache = tmp_path / "data", tmp_path / "keras_home" / "datasets"
    for folder, n in ((data_dir, 3), (cache, 5)):
        folder.mkdir(parents=True)
        np.savez(folder / "mnist.npz", x_train=fake_images(n, 28, 28))
    assert len(load("mnist").x) == 5  # the Keras cache
    monkeypatch.setenv("GANTRAIN_DATA_DIR", str(data_dir))
    assert len(load("mnist").x) == 3


def test_download_from_origin_is_cached(tmp_path, monkeypatch, mnist_npz):
    monkeypatch.setattr(mnist, "MNIST_URL", mnist_npz.as_uri())
    ds = load("mnist")
    cached = tmp_path / "keras_home" / "datasets" / "mnist.npz"
    assert cached.read_bytes() == mnist_npz.read_bytes()
    monkeypatch.setattr(mnist, "MNIST_URL", "file:///nonexistent/mnist.npz")
    np.testing.assert_array_equal(load("mnist").x, ds.x)  # from the cache, no download


@pytest.mark.parametrize("name, file", [("mnist", "mnist.npz"), ("fashion_mnist", "train-images-idx3-ubyte.gz"),
                                         ("cifar10", "cifar-10-python.tar.gz")])
def test_offline_failure_is_one_sentence_naming_the_file(monkeypatch, name, file):
    tried = []

    def offline(url, *args, **kwargs):
        tried.append(url)
        raise urllib.error.URLError("no network")

    monkeypatch.setattr("urllib.request.urlopen", offline)
    with pytest.raises(GantrainError) as err:
        load(name)
    assert [url.rsplit("/", 1)[1] for url in tried] == [file]  # the origin of the file it names, without a connection
    message = str(err.value)
    assert "\n" not in message and f"put {file} in " in message and "dataset.path=" in message


def test_cifar_directory_and_archive(tmp_path, cifar_archive):
    batches = write_cifar_batches(tmp_path / "dir" / "cifar-10-batches-py")
    ds = load("cifar10", path=str(tmp_path / "dir"))
    assert ds.x.shape == (20, 32, 32, 3) and ds.x.dtype == np.uint8
    # Row layout is CHW: the first 1024 values are the red plane.
    np.testing.assert_array_equal(ds.x[0, :, :, 0].ravel(), batches["data_batch_1"][0, :1024])
    np.testing.assert_array_equal(ds.x[0, 0, 1], batches["data_batch_1"][0, [1, 1025, 2049]])
    np.testing.assert_array_equal(load("cifar10", path=str(cifar_archive)).x, ds.x)
    assert load("cifar10", path=str(cifar_archive), split="test").x.shape == (4, 32, 32, 3)


def test_cifar_archive_missing_a_batch(tmp_path):
    write_cifar_batches(tmp_path / "cifar-10-batches-py")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    path = tmp_path / "partial.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tmp_path / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    with pytest.raises(ConfigError, match="has no member 'cifar-10-batches-py/data_batch_3'"):
        load("cifar10", path=str(path))


def test_cifar_pickle_cannot_run_code(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder)
    with open(folder / "data_batch_1", "wb") as f:
        pickle.dump({b"data": gzip.GzipFile}, f)  # any non-array class
    with pytest.raises(ConfigError, match="refusing to load gzip.GzipFile"):
        load("cifar10", path=str(folder))


@pytest.mark.parametrize("name, centers, std", [("ring8", ring8_centers(), 0.01), ("grid25", grid25_centers(), 0.05)])
def test_toy_mixtures(name, centers, std):
    ds = load(name, num_points=5000)
    assert ds.x.shape == (5000, 2) and ds.x.dtype == np.float32 and not ds.is_image
    distance = np.linalg.norm(ds.x[:, None] - centers[None], axis=-1)
    nearest = distance.min(axis=1)
    assert nearest.max() < 6 * std  # every point belongs to a mode
    assert len(np.unique(distance.argmin(axis=1))) == len(centers)  # every mode is used
    np.testing.assert_allclose(nearest.std(), std * np.sqrt(2 - np.pi / 2), rtol=0.1)  # Rayleigh


def test_toy_centers():
    np.testing.assert_allclose(np.linalg.norm(ring8_centers(), axis=1), 1.0)
    assert sorted(set(grid25_centers()[:, 0])) == [-4, -2, 0, 2, 4]


def test_folder_of_images_with_class_subfolders(tmp_path):
    from PIL import Image

    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "c").mkdir(parents=True)
    wide = np.zeros((10, 30, 3), np.uint8)
    wide[:, 10:20] = 255  # the centre square is white, the sides black
    Image.fromarray(wide).save(tmp_path / "a" / "wide.png")
    Image.fromarray(np.full((40, 40), 100, np.uint8)).save(tmp_path / "b" / "c" / "grey.JPG")
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden").mkdir()
    Image.fromarray(wide).save(tmp_path / ".hidden" / "skip.png")

    x = load("folder", path=str(tmp_path), resolution=8).x
    assert x.shape == (2, 8, 8, 3) and x.dtype == np.uint8
    assert (x[0] == 255).all()  # sorted order: a/wide.png first, centre-cropped before resizing
    assert np.abs(x[1].astype(int) - 100).max() <= 2  # JPEG, greyscale converted to RGB
    assert load("folder", path=str(tmp_path), resolution=16, channels=1).x.shape == (2, 16, 16, 1)


@pytest.mark.parametrize(
    "setup, options, message",
    [
        (None, {}, "^dataset.path: required for dataset=folder"),
        ("empty", {}, "^dataset.path: no PNG or JPEG images in"),
        ("file", {}, "^dataset.path: .* is not a directory"),
        ("broken", {}, r"^dataset.path: none of the 1 images in .* could be read"),
        ("empty", {"resolution": 4}, "^dataset.resolution: must be >= 8"),
        ("empty", {"channels": 2}, "^dataset.channels: must be 1 or 3"),
    ],
)
def test_folder_errors_name_the_key(tmp_path, setup, options, message):
    path = None
    if setup == "empty":
        path = tmp_path
    elif setup == "file":
        path = tmp_path / "x.png"
        path.write_bytes(b"")
    elif setup == "broken":
        path = tmp_path
        (tmp_path / "bad.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(ConfigError, match=message):
        load("folder", path=None if path is None else str(path), **options)
