"""Subsets of any dataset, and image folders streamed from disk: the cache, corrupt files, the
pipeline's order, and training from a stream (mirrored, resumed)."""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from PIL import Image

from gantrain.data import balanced_choice, load
from gantrain.data import folder as folder_module
from gantrain.errors import ConfigError
from gantrain.run.strategies import STRATEGIES
from tests.conftest import (
    TINY,
    assert_same_state,
    assert_same_step,
    straight_and_resumed,
)


def dataset(name: str, **options):
    return load(OmegaConf.create({"name": name, **options}))


def test_a_subset_is_class_balanced_fixed_and_in_order(mnist_npz):
    full = dataset("mnist", path=str(mnist_npz))  # 64 images, labels i % 10
    part = dataset("mnist", path=str(mnist_npz), subset=20)
    assert part.x.shape == (20, 28, 28, 1)
    assert Counter(part.y.tolist()) == {label: 2 for label in range(10)}
    again = dataset("mnist", path=str(mnist_npz), subset=20)
    np.testing.assert_array_equal(part.x, again.x)  # the same examples every time, whatever the run
    index = balanced_choice(64, 20, full.y)
    np.testing.assert_array_equal(part.x, full.x[index])
    assert list(index) == sorted(index)
    # 25 of 10 classes: 3 of five classes, 2 of the others.
    assert sorted(Counter(full.y[balanced_choice(64, 25, full.y)]).values()) == [2] * 5 + [3] * 5


def test_a_subset_of_points_keeps_the_mixture():
    part = dataset("ring8", num_points=1000, subset=100)
    assert part.x.shape == (100, 2) and part.centers.shape == (8, 2)


@pytest.mark.parametrize("n", [0, 65, "many"])
def test_a_subset_outside_the_dataset_is_named(mnist_npz, n):
    with pytest.raises(ConfigError, match=r"^dataset.subset: must be between 1 and 64"):
        dataset("mnist", path=str(mnist_npz), subset=n)


def image_folder(root: Path, n: int = 12, side: int = 8, corrupt: bool = False) -> np.ndarray:
    """``n`` distinct RGB PNGs (pixel values identify the image) in two class subfolders."""
    images = np.stack([np.full((side, side, 3), 10 * i, np.uint8) for i in range(n)])
    images[:, 0, 0] = np.arange(n)[:, None]
    for i, image in enumerate(images):
        sub = root / ("a" if i % 2 else "b")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(image).save(sub / f"{i:03d}.png")
    if corrupt:
        (root / "a" / "999_bad.png").write_bytes(b"\x89PNG cut short")
    return images


def test_a_streamed_folder_holds_the_in_memory_images(tmp_path):
    image_folder(tmp_path / "pics")
    memory = dataset("folder", path=str(tmp_path / "pics"), resolution=8)
    stream = dataset("folder", path=str(tmp_path / "pics"), resolution=8, in_memory=False)
    assert memory.stream is None and stream.x is None and stream.stream is not None
    assert (stream.size, stream.shape) == (12, (8, 8, 3))
    assert not (tmp_path / "pics" / ".gantrain_cache").exists()  # nothing written before prepare()
    prepared = stream.stream.prepare()
    cached = sorted((tmp_path / "pics" / ".gantrain_cache" / "8x8x3").glob("*.png"))
    assert len(cached) == 12
    # An epoch of the cache holds the images the in-memory path decodes.
    epoch = next(iter(prepared.batches(12, seed=0))).numpy()
    by_id = lambda x: x[np.argsort(x[:, 0, 0, 0])]  # noqa: E731
    np.testing.assert_array_equal(by_id(epoch), by_id(memory.x))
    np.testing.assert_array_equal(stream.head(), memory.x)


def test_each_epoch_of_a_stream_reads_every_image_once_in_a_seeded_order(tmp_path):
    image_folder(tmp_path)
    stream = dataset("folder", path=str(tmp_path), resolution=8, in_memory=False).stream.prepare()
    batches = [b.numpy() for b in stream.batches(4, seed=3).take(6)]
    ids = [[int(i) for i in batch[:, 0, 0, 0]] for batch in batches]
    assert sorted(sum(ids[:3], [])) == list(range(12)) == sorted(sum(ids[3:], []))
    assert sum(ids[:3], []) != sum(ids[3:], [])  # reshuffled each epoch
    assert ids == [[int(i) for i in b.numpy()[:, 0, 0, 0]] for b in stream.batches(4, seed=3).take(6)]


def test_the_cache_is_reused_and_follows_changes_in_the_folder(tmp_path, monkeypatch):
    from gantrain.data import stream as stream_module

    image_folder(tmp_path)
    cache = tmp_path / ".gantrain_cache" / "8x8x3"
    stream = lambda: dataset("folder", path=str(tmp_path), resolution=8, in_memory=False).stream.prepare()  # noqa: E731
    stream()
    first = {p.name: p.stat().st_mtime_ns for p in cache.glob("*.png")}
    written = []
    real_write = stream_module.write_cache
    monkeypatch.setattr(
        stream_module, "write_cache", lambda folder, files, *a: written.append(files) or real_write(folder, files, *a)
    )
    stream()
    assert written == [] and {p.name: p.stat().st_mtime_ns for p in cache.glob("*.png")} == first  # reused
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a" / "new.png")
    (tmp_path / "b" / "000.png").unlink()
    Image.fromarray(np.full((8, 8, 3), 7, np.uint8)).save(tmp_path / "b" / "002.png")  # changed
    changed = stream()
    assert len(written) == 1 and sorted(f.name for f in written[0]) == ["002.png", "new.png"]  # only these
    assert len(changed) == 12 and len(list(cache.glob("*.png"))) == 12  # old entries of 000 and 002 gone
    batch = next(iter(changed.batches(12, seed=0))).numpy()
    assert {int(v) for v in batch[:, 1, 1, 0]} == {7, 0} | {10 * i for i in range(1, 12) if i != 2}


def test_the_cache_goes_to_the_data_dir_when_one_is_set(tmp_path, monkeypatch):
    image_folder(tmp_path / "pics")
    monkeypatch.setenv("GANTRAIN_DATA_DIR", str(tmp_path / "data_dir"))
    dataset("folder", path=str(tmp_path / "pics"), resolution=8, in_memory=False).stream.prepare()
    assert not (tmp_path / "pics" / ".gantrain_cache").exists()
    assert len(list((tmp_path / "data_dir" / "folder_cache").rglob("*.png"))) == 12


@pytest.mark.parametrize("in_memory, cache", [(True, True), (False, True), (False, False)])
def test_a_corrupt_image_is_skipped_with_a_warning_naming_it(tmp_path, caplog, in_memory, cache):
    image_folder(tmp_path, corrupt=True)
    with caplog.at_level(logging.WARNING):
        data = dataset("folder", path=str(tmp_path), resolution=8, in_memory=in_memory, cache=cache)
        stream = data.stream.prepare() if data.stream is not None else None
    if cache:  # the file is decoded while loading or caching: skipped there
        assert (len(stream) if stream else data.size) == 12
        assert any("999_bad.png" in r.getMessage() for r in caplog.records)
    else:  # a file the pipeline cannot decode is dropped from its epoch, not a crash
        ids = [int(i) for b in stream.batches(4, seed=0).take(6) for i in b.numpy()[:, 0, 0, 0]]
        assert Counter(ids) == {i: 2 for i in range(12)}  # two epochs of the 12 good images


def test_decoding_without_the_cache_is_close_to_pillows(tmp_path):
    rng = np.random.default_rng(0)
    smooth = np.kron(rng.integers(0, 256, (4, 4, 3)), np.ones((12, 12, 1))).astype(np.uint8)  # 48x48
    Image.fromarray(smooth).save(tmp_path / "x.png")
    memory = dataset("folder", path=str(tmp_path), resolution=16).x[0].astype(int)
    raw = dataset("folder", path=str(tmp_path), resolution=16, in_memory=False, cache=False).stream.prepare()
    streamed = next(iter(raw.batches(1, seed=0))).numpy()[0].astype(int)
    assert np.median(np.abs(streamed - memory)) <= 2


def test_a_folder_larger_than_its_memory_share_is_streamed(tmp_path, monkeypatch):
    image_folder(tmp_path)
    monkeypatch.setattr(folder_module, "physical_memory", lambda: 4 * 12 * 8 * 8 * 3 - 1)
    assert dataset("folder", path=str(tmp_path), resolution=8).stream is not None
    monkeypatch.setattr(folder_module, "physical_memory", lambda: 4 * 12 * 8 * 8 * 3)
    assert dataset("folder", path=str(tmp_path), resolution=8).stream is None


def test_a_mirrored_step_from_a_stream_equals_the_default_step(tmp_path):
    from gantrain import api
    from gantrain.config import check_train
    from gantrain.training.gan import build_gan
    from gantrain.training.step import RealBatches, make_train_step

    image_folder(tmp_path, n=16)
    stream = dataset("folder", path=str(tmp_path), resolution=8, in_memory=False).stream.prepare()
    cfg = api.compose(
        [
            "model=dcgan",
            *TINY["dcgan"],
            "model.g_batchnorm=false",
            "train.batch_size=4",
            "train.n_critic=2",
            "train.beta2=0.999",
        ]
    )
    results, init = [], None
    for strategy in (
        tf.distribute.get_strategy(),
        STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]})),
    ):
        gan = build_gan(cfg, (8, 8, 3), strategy)
        init = init or (gan.generator.get_weights(), gan.discriminator.get_weights())
        gan.generator.set_weights(init[0])
        gan.discriminator.set_weights(init[1])
        step = make_train_step(gan, RealBatches(iter(stream.batches(8, seed=0)), 16), check_train(cfg.train))
        metrics = {k: float(v) for k, v in step(2).items()}
        results.append((metrics, gan.generator.get_weights() + gan.discriminator.get_weights()))
    assert_same_step(*results)


# rpgan: G's update reads a third batch from the stream; with EMA and augmentation.
@pytest.mark.parametrize(
    "loss",
    [[], ["loss=rpgan", "train.ema=0.9", "train.augment=[translation,cutout]"]],
    ids=["wgan_gp", "rpgan-ema-augment"],
)
def test_training_from_a_stream_resumes_bit_for_bit(tmp_path, make_cfg, loss):
    image_folder(tmp_path / "pics", n=20)
    options = [
        "model=dcgan",
        *TINY["dcgan"],
        "dataset=folder",
        f"dataset.path={tmp_path / 'pics'}",
        "dataset.resolution=8",
        "dataset.in_memory=false",
        "train.batch_size=4",
        "train.n_critic=2",
        "train.checkpoint_every=3",
        "train.sample_every=100",
        "train.log_every=1",
        *loss,
    ]
    ckpt = straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=3)
    assert_same_state(*ckpt)
    assert any(name.startswith("data_iterator") for name, _ in tf.train.list_variables(ckpt[0]))
    # Steps 4-6 read the same batches after the resume: the same losses, to the last bit.
    logged = [
        [
            {k: v for k, v in json.loads(line).items() if k != "steps_per_sec"}
            for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()
        ]
        for run in ("straight", "resumed")
    ]
    assert [r for r in logged[0] if r["step"] > 3] == [r for r in logged[1] if r["step"] > 3]


def test_a_cache_that_cannot_be_written_leaves_no_torn_entry(tmp_path, full_disk):
    image_folder(tmp_path / "pics")
    full_disk.append(tmp_path / "pics" / ".gantrain_cache")
    stream = dataset("folder", path=str(tmp_path / "pics"), resolution=8, in_memory=False).stream
    with pytest.raises(OSError, match="No space left on device") as err:
        stream.prepare()
    assert ".gantrain_cache" in err.value.filename
    assert [p.name for p in (tmp_path / "pics" / ".gantrain_cache").rglob("*") if p.is_file()] == []
    full_disk.clear()
    assert len(stream.prepare()) == 12
