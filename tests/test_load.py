"""``gantrain.load``: a trained run's networks in Python, and the very samples and strips
``gantrain-generate`` writes; the truncation trick's noise; the README's example, run."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

import gantrain
from gantrain.commands.generate import main as generate_main
from gantrain.errors import ConfigError
from gantrain.evaluation.draw import evaluation_noise
from tests.conftest import TINY, write_mnist_npz

FAST = ["train.steps=2", "train.batch_size=8", "train.n_critic=1", "train.sample_every=100"]
TOY = ["model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=200"]
README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.fixture(scope="module")
def runs(tmp_path_factory, trained) -> dict[str, Path]:
    """An unconditional dcgan with a moving average of G on a tiny MNIST file, and a toy mlp on ring8."""
    root = tmp_path_factory.mktemp("load")
    data = write_mnist_npz(root / "data")
    images = ["model=dcgan", *TINY["dcgan"], *FAST, "train.ema=0.999", "dataset=mnist", f"dataset.path={data}"]
    return {"images": trained(images, root / "images"), "toy": trained(TOY, root / "toy")}


def generated(capsys, *args: str) -> None:
    """gantrain-generate's entry point, run in this process; it must succeed."""
    generate_main(list(args))
    capsys.readouterr()


def test_sample_gives_the_images_gantrain_generate_writes(runs, tmp_path, capsys):
    run = gantrain.load(runs["images"])
    images = run.sample(6, seed=5)
    generated(capsys, f"run_dir={runs['images']}", f"out={tmp_path / 'png'}", "num_samples=6", "seed=5")
    assert images.dtype == np.uint8 and images.shape == (6, 28, 28, 1)
    for i, image in enumerate(images):
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "png" / f"{i:06d}.png")), image[..., 0])
    assert not np.array_equal(images, run.sample(6, seed=6))  # the seed is the one asked for


def test_toy_runs_sample_float_points_as_gantrain_generate_writes_them(runs, tmp_path, capsys):
    run = gantrain.load(runs["toy"], checkpoint=2)
    generated(capsys, f"run_dir={runs['toy']}", f"out={tmp_path / 'npz'}", "format=npz", "num_samples=5", "seed=3")
    with np.load(tmp_path / "npz" / "samples.npz") as stored:
        np.testing.assert_array_equal(run.sample(5, seed=3), stored["x"])
    assert run.sample(5, seed=3).dtype == np.float32
    with pytest.raises(ConfigError, match="interpolate: ring8 samples are 2-D points"):
        run.interpolate(4)


def test_interpolate_gives_the_strip_gantrain_generate_writes(runs, tmp_path, capsys):
    strip = gantrain.load(runs["images"]).interpolate(3, rows=2, seed=4, truncation=0.8)
    generated(
        capsys,
        f"run_dir={runs['images']}",
        f"out={tmp_path / 'strip'}",
        "interpolate=3",
        "num_samples=2",
        "seed=4",
        "truncation=0.8",
    )
    with Image.open(tmp_path / "strip" / "interpolation.png") as written:
        np.testing.assert_array_equal(np.asarray(strip), np.asarray(written))


def test_the_discriminator_is_the_checkpoint_s_or_none_where_it_holds_none(runs, tmp_path):
    """D's weights are those saved (a fresh D would have others); a checkpoint of G alone, as one
    trimmed for sharing, gives None."""
    from gantrain.evaluation.saved_run import restore_discriminator, restore_models

    run = gantrain.load(runs["images"])
    _, saved = restore_models(run.cfg, run.dataset, run.path)
    fresh = [w.numpy() for w in saved.weights]
    restore_discriminator(saved, run.path)
    assert run.discriminator is not None
    for loaded, restored in zip(run.discriminator.weights, saved.weights, strict=True):
        np.testing.assert_array_equal(loaded.numpy(), restored.numpy())
    assert any(not np.array_equal(w.numpy(), f) for w, f in zip(saved.weights, fresh, strict=True))
    trimmed = shutil.copytree(runs["images"], tmp_path / "trimmed")
    shutil.rmtree(trimmed / "checkpoints")
    tf.train.Checkpoint(ema_generator=run.generator).save(str(trimmed / "checkpoints" / "ckpt"))
    alone = gantrain.load(trimmed)
    assert alone.discriminator is None
    np.testing.assert_array_equal(alone.sample(3), run.sample(3))


def test_truncated_noise_stays_within_psi_and_is_the_same_for_the_same_seed():
    plain = evaluation_noise(64, 16, seed=7).numpy()
    np.testing.assert_array_equal(plain, tf.random.stateless_normal([64, 16], seed=[7, 2]).numpy())
    np.testing.assert_array_equal(evaluation_noise(64, 16, 7, truncation=None).numpy(), plain)
    z = evaluation_noise(64, 16, 7, truncation=0.5).numpy()
    assert np.abs(z).max() <= 0.5 and (np.abs(plain) > 0.5).any()
    inside = np.abs(plain) <= 0.5
    np.testing.assert_array_equal(z[inside], plain[inside])  # only the entries beyond psi are drawn again
    assert len(np.unique(z[~inside])) == (~inside).sum()  # each from its own draw, not one clipped value
    np.testing.assert_array_equal(evaluation_noise(64, 16, 7, truncation=0.5).numpy(), z)
    np.testing.assert_array_equal(evaluation_noise(10, 16, 7, truncation=0.5).numpy(), z[:10])


def test_truncated_samples_are_g_s_images_of_the_truncated_noise_and_repeat(runs):
    from gantrain.evaluation.measure import as_exported

    run = gantrain.load(runs["images"])
    truncated = run.sample(8, seed=2, truncation=0.5)
    np.testing.assert_array_equal(run.sample(8, seed=2, truncation=0.5), truncated)
    noise = evaluation_noise(8, int(run.cfg.model.z_dim), 2, truncation=0.5)
    made = run.generator(noise, training=False).numpy()
    np.testing.assert_array_equal(truncated, as_exported(made))
    assert not np.array_equal(truncated, run.sample(8, seed=2))


@pytest.mark.parametrize(
    "call, named",
    [
        (lambda run: run.sample(4, truncation=0), "truncation: must be > 0"),
        (lambda run: run.sample(4, truncation=-0.5), "truncation: must be > 0"),
        (lambda run: run.sample(0), "n: must be >= 1"),
        (lambda run: run.sample(4, classes=[1]), "classes: this run is unconditional"),
        (lambda run: run.interpolate(1), "interpolate: needs at least 2 points"),
    ],
)
def test_bad_arguments_are_config_errors_naming_them(runs, call, named):
    with pytest.raises(ConfigError, match=re.escape(named)):
        call(gantrain.load(runs["images"]))


def test_the_readme_s_load_example_runs(runs, tmp_path, monkeypatch):
    """The README's ``gantrain.load`` block, as written, on a tiny copy of the MNIST run it reads."""
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", README.read_text(), re.S) if "gantrain.load(" in b]
    run_dir = re.search(r'gantrain\.load\("([^"]+)"', block)
    assert run_dir is not None
    shutil.copytree(runs["images"], tmp_path / run_dir[1])
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "README.md", "exec"), {})
