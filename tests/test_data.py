"""Loaders for each official format, the search order, downloads, and bad files."""

import errno
import gzip
import logging
import os
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

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


def test_a_directory_s_data_is_read_not_the_statistics_cached_beside_it(tmp_path, mnist_npz):
    """Evaluation caches reference statistics beside the data: in a dataset.path directory, the
    next read must still find the data (the cache's name sorts before mnist.npz)."""
    from gantrain.evaluation.features.stats_cache import cached_arrays

    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "mnist.npz").write_bytes(mnist_npz.read_bytes())
    node = OmegaConf.create({"name": "mnist", "path": str(folder)})
    cached_arrays(node, "gantrain_stats_mnist_classifier_train", {"k": 1}, lambda: {"mu": np.zeros(3)})
    assert [p.name for p in sorted(folder.glob("*.npz"))][0].startswith("gantrain_stats_")
    np.testing.assert_array_equal(load("mnist", path=str(folder)).x[..., 0], np.load(mnist_npz)["x_train"])


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


@pytest.mark.parametrize(
    "name, file",
    [("mnist", "mnist.npz"), ("fashion_mnist", "train-images-idx3-ubyte.gz"), ("cifar10", "cifar-10-python.tar.gz")],
)
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


SIDE = (12, 12)


def wide(dtype, *values) -> list[Image.Image]:
    return [Image.fromarray(np.full(SIDE, value, dtype)) for value in values]


# Every mode Pillow reads, in a file Pillow writes: (mode, format, [its darkest image, its brightest,
# and for pixels wider than a byte the middle of their range]).
DEPTHS = [
    ("1", "PNG", [Image.new("1", SIDE, 0), Image.new("1", SIDE, 1)]),
    ("L", "PNG", [Image.new("L", SIDE, 0), Image.new("L", SIDE, 255)]),
    ("LA", "PNG", [Image.new("LA", SIDE, (0, 255)), Image.new("LA", SIDE, (255, 255))]),
    ("P", "PNG", [Image.new("RGB", SIDE).convert("P"), Image.new("RGB", SIDE, (255,) * 3).convert("P")]),
    ("RGB", "PNG", [Image.new("RGB", SIDE), Image.new("RGB", SIDE, (255,) * 3)]),
    ("RGBA", "PNG", [Image.new("RGBA", SIDE, (0, 0, 0, 255)), Image.new("RGBA", SIDE, (255,) * 4)]),
    ("I;16", "PNG", wide(np.uint16, 0, 65535, 32768)),
    ("I;16B", "TIFF", wide(">u2", 0, 65535, 32768)),
    ("I", "TIFF", wide(np.int32, -(2**31), 2**31 - 1, 0)),
    ("F", "TIFF", wide(np.float32, 0.0, 1.0, 0.5)),
    ("CMYK", "JPEG", [Image.new("CMYK", SIDE, (0, 0, 0, 255)), Image.new("CMYK", SIDE, (0, 0, 0, 0))]),
]


@pytest.mark.parametrize("mode, form, images", DEPTHS, ids=[d[0] for d in DEPTHS])
@pytest.mark.parametrize("channels", [1, 3])
def test_the_full_range_of_every_pixel_depth_maps_to_minus_one_to_one(tmp_path, mode, form, images, channels):
    for i, image in enumerate(images):
        image.save(tmp_path / f"{i}.png", format=form)  # found by its name, decoded by its content
        assert Image.open(tmp_path / f"{i}.png").mode == mode
    x = load("folder", path=str(tmp_path), resolution=8, channels=channels).x / 127.5 - 1.0
    tolerance = 2 / 127.5 if form == "JPEG" else 0
    np.testing.assert_allclose(x[0], -1.0, atol=tolerance)
    np.testing.assert_allclose(x[1], 1.0, atol=tolerance)
    if len(images) == 3:
        np.testing.assert_allclose(x[2], 0.0, atol=1 / 127.5)


@pytest.mark.parametrize("in_memory, cache", [(True, True), (False, True), (False, False)])
def test_a_16_bit_png_spans_minus_one_to_one(tmp_path, in_memory, cache):
    for value in (0, 32768, 65535):
        Image.fromarray(np.full(SIDE, value, np.uint16)).save(tmp_path / f"{value:05d}.png")
    data = load("folder", path=str(tmp_path), resolution=8, channels=1, in_memory=in_memory, cache=cache)
    if in_memory:
        x = data.x
    else:  # one epoch in the stream's order, put back in the files' order by each image's value
        x = np.sort(next(iter(data.stream.prepare().batches(3, seed=0))).numpy(), axis=0)
    x = x.reshape(3, -1) / 127.5 - 1.0
    np.testing.assert_allclose(x[0], -1.0)
    np.testing.assert_allclose(x[1], 0.0, atol=0.01)
    np.testing.assert_allclose(x[2], 1.0)


def test_pixels_without_a_range_to_scale_are_skipped_with_a_warning(tmp_path, caplog):
    Image.new("L", SIDE, 255).save(tmp_path / "good.png")
    Image.fromarray(np.full(SIDE, 3.0, np.float32)).save(tmp_path / "bright_float.png", format="TIFF")
    Image.fromarray(np.full(SIDE, np.nan, np.float32)).save(tmp_path / "nan_float.png", format="TIFF")
    with caplog.at_level(logging.WARNING):
        x = load("folder", path=str(tmp_path), resolution=8).x
    assert x.shape == (1, 8, 8, 3) and (x == 255).all()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("bright_float.png, which cannot be read" in w for w in warnings), warnings
    assert any("nan_float.png, which cannot be read" in w for w in warnings), warnings


@pytest.mark.parametrize("in_memory", [True, False])
def test_every_unreadable_file_is_skipped_with_a_warning_naming_it(tmp_path, caplog, monkeypatch, in_memory):
    pictures = tmp_path / "pictures"
    pictures.mkdir()
    Image.fromarray(fake_images(1, 64, 64, 3)[0]).save(pictures / "good.png")
    whole = (pictures / "good.png").read_bytes()
    (pictures / "truncated.png").write_bytes(whole[: len(whole) // 2])
    (pictures / "zero.png").write_bytes(b"")
    (pictures / "text.png").write_text("not an image")
    (pictures / "folder.png").mkdir()
    (pictures / "link.png").symlink_to(tmp_path / "gone.png")
    (pictures / "locked.png").write_bytes(whole)
    (pictures / "locked.png").chmod(0)
    if os.access(pictures / "locked.png", os.R_OK):  # root reads any file: deny it as the kernel would
        opened = Image.open

        def denied(path, *args, **kwargs):
            if Path(path).name == "locked.png":
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))
            return opened(path, *args, **kwargs)

        monkeypatch.setattr(Image, "open", denied)
    with caplog.at_level(logging.WARNING):
        data = load("folder", path=str(pictures), resolution=8, in_memory=in_memory)
        size = data.size if in_memory else len(data.stream.prepare())
    assert size == 1
    warnings = " ".join(r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    for bad in ("truncated", "zero", "text", "folder", "link", "locked"):
        assert f"{pictures / bad}.png, which cannot be read" in warnings, bad


def test_a_label_outside_the_classes_is_named_with_its_file(tmp_path):
    labels = np.arange(64, dtype=np.uint8) % 10
    labels[5] = 200
    np.savez(tmp_path / "mnist.npz", x_train=fake_images(64, 28, 28), y_train=labels)
    with pytest.raises(
        ConfigError, match=r"^dataset.path: .*mnist.npz holds the label 200; its labels must be 0 to 9$"
    ):
        load("mnist", path=str(tmp_path / "mnist.npz"))
    np.savez(tmp_path / "float.npz", x_train=fake_images(4, 28, 28), y_train=np.zeros(4, np.float32))
    with pytest.raises(ConfigError, match=r"^dataset.path: .*float.npz holds float32 labels"):
        load("fashion_mnist", path=str(tmp_path / "float.npz"))
    idx = tmp_path / "idx"
    idx.mkdir()
    write_idx(idx / "train-images-idx3-ubyte", fake_images(64, 28, 28))
    write_idx(idx / "train-labels-idx1-ubyte", labels)
    with pytest.raises(ConfigError, match=r"^dataset.path: .*train-images-idx3-ubyte holds the label 200"):
        load("mnist", path=str(idx))


def test_a_cifar_label_outside_the_classes_is_named_with_its_batch(tmp_path):
    import pickle

    folder = tmp_path / "cifar-10-batches-py"
    write_cifar_batches(folder)
    with open(folder / "data_batch_2", "rb") as f:
        batch = pickle.load(f, encoding="bytes")
    batch[b"labels"][1] = -1
    with open(folder / "data_batch_2", "wb") as f:
        pickle.dump(batch, f, protocol=2)
    with pytest.raises(ConfigError, match=r"^dataset.path: .*: batch 'data_batch_2' holds the label -1"):
        load("cifar10", path=str(folder))
