"""gantrain-generate: samples of a trained run written as PNGs (class subfolders) or one npz, the
round trip through gantrain-eval's metric functions, interpolation strips, and its refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf
from PIL import Image

from gantrain import api
from gantrain.commands.generate import main
from gantrain.evaluation.interpolation import slerp
from tests.conftest import TINY, fake_images, snapshot

pytestmark = pytest.mark.slow  # each module run trains two tiny runs first


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    """A conditional dcgan on a 10-class MNIST file and an unconditional mlp on ring8, 2 steps each."""
    from gantrain.run.train import train

    root = tmp_path_factory.mktemp("generate")
    labels = np.arange(80, dtype=np.uint8) % 10
    np.savez(
        root / "mnist.npz",
        x_train=fake_images(80, 28, 28),
        y_train=labels,
        x_test=fake_images(20, 28, 28, seed=1),
        y_test=labels[:20],
    )
    common = ["train.steps=2", "train.batch_size=8", "train.n_critic=1", "train.sample_every=100"]
    train(
        api.compose(
            [
                "model=dcgan",
                *TINY["dcgan"],
                "model.conditional=true",
                "loss=hinge",
                "dataset=mnist",
                f"dataset.path={root / 'mnist.npz'}",
                *common,
            ]
        ),
        root / "conditional",
    )
    train(
        api.compose(["model=mlp", *TINY["mlp"], "dataset=ring8", "dataset.num_points=256", "loss=nsgan", *common]),
        root / "toy",
    )
    return {"conditional": root / "conditional", "toy": root / "toy", "root": root}


def run_generate(capsys, *args: str) -> tuple[int, str, str]:
    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_npz_round_trip_gives_gantrain_eval_s_numbers(runs, tmp_path, capsys):
    from gantrain.data import DATASETS
    from gantrain.evaluation.measure import evaluate, sample_metrics
    from gantrain.evaluation.plan import evaluation_plan

    code, _, err = run_generate(
        capsys, f"run_dir={runs['conditional']}", f"out={tmp_path / 'npz'}", "format=npz", "num_samples=40"
    )
    assert code == 0, err
    with np.load(tmp_path / "npz" / "samples.npz") as stored:
        x, y = stored["x"], stored["y"]
    assert x.dtype == np.uint8 and x.shape == (40, 28, 28, 1) and np.bincount(y).tolist() == [4] * 10
    cfg = OmegaConf.load(runs["conditional"] / ".hydra" / "config.yaml")
    dataset = DATASETS.build(cfg.dataset)
    plan = evaluation_plan("mnist", conditional=True)
    metrics, _ = sample_metrics(cfg.dataset, dataset, x.astype(np.float32) / 127.5 - 1.0, plan, labels=y)
    measured = evaluate(runs["conditional"], num_samples=40)
    assert {k: measured[k] for k in metrics} == metrics


def test_png_class_folders_hold_the_requested_counts(runs, tmp_path, capsys):
    code, out, err = run_generate(
        capsys, f"run_dir={runs['conditional']}", f"out={tmp_path / 'png'}", "classes=[3,7]", "num_samples=10"
    )
    assert code == 0, err
    for k in ("3", "7"):
        files = sorted((tmp_path / "png" / k).iterdir())
        assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
        with Image.open(files[0]) as image:
            assert image.size == (28, 28) and image.mode == "L"
    assert sorted(p.name for p in (tmp_path / "png").iterdir()) == ["3", "7"]
    assert '"per_class": {"3": 5, "7": 5}' in out


def test_generated_class_samples_are_what_g_makes_for_that_class(runs, tmp_path, capsys):
    """The PNGs of class 7 are G's images for label 7 from the run's noise (the 2nd, 4th, ... of
    the num_samples draws, since the two classes alternate), and those of class 3 for label 3:
    G called here directly, on noise for which the two classes' images differ."""
    import tensorflow as tf

    from gantrain.data import DATASETS
    from gantrain.evaluation.draw import evaluation_noise
    from gantrain.evaluation.saved_run import checkpoint_path, restore_models
    from gantrain.run.directory import RunDir

    run_generate(capsys, f"run_dir={runs['conditional']}", f"out={tmp_path / 'png'}", "classes=[3,7]", "num_samples=4")
    cfg = OmegaConf.load(runs["conditional"] / ".hydra" / "config.yaml")
    generator, _ = restore_models(
        cfg, DATASETS.build(cfg.dataset), checkpoint_path(RunDir(runs["conditional"]), "latest")
    )
    noise = evaluation_noise(4, int(cfg.model.z_dim), int(cfg.train.seed))
    made = {
        label: np.clip(
            np.round((generator([noise, tf.fill([4], label)], training=False).numpy()[..., 0] + 1.0) * 127.5), 0, 255
        ).astype(np.uint8)
        for label in (3, 7)
    }
    assert not np.array_equal(made[3][3], made[7][3])  # the label shows in the image
    for label, position in ((3, 2), (7, 3)):  # the second sample of each class
        np.testing.assert_array_equal(
            np.asarray(Image.open(tmp_path / "png" / str(label) / "000001.png")), made[label][position]
        )


def test_unconditional_points_go_to_npz_and_interpolation_strips_have_a_row_per_class(runs, tmp_path, capsys):
    code, _, err = run_generate(
        capsys, f"run_dir={runs['toy']}", f"out={tmp_path / 'toy'}", "format=npz", "num_samples=7", "sampling=drs"
    )
    assert code == 0, err
    with np.load(tmp_path / "toy" / "samples.npz") as stored:
        assert stored["x"].shape == (7, 2) and stored["x"].dtype == np.float32 and "y" not in stored
    code, _, err = run_generate(capsys, f"run_dir={runs['conditional']}", f"out={tmp_path / 'strip'}", "interpolate=4")
    assert code == 0, err
    with Image.open(tmp_path / "strip" / "interpolation.png") as image:
        assert image.size == (4 * 30 + 2, 10 * 30 + 2)  # 4 points per row, one row per class


def test_truncated_samples_repeat_for_a_seed_and_the_summary_records_psi(runs, tmp_path, capsys):
    """The same seed and truncation give the same images; truncation changes them."""
    written = {}
    for name, extra in (("a", ["truncation=0.6"]), ("b", ["truncation=0.6"]), ("plain", [])):
        code, out, err = run_generate(
            capsys,
            f"run_dir={runs['conditional']}",
            f"out={tmp_path / name}",
            "format=npz",
            "num_samples=20",
            "seed=3",
            *extra,
        )
        assert code == 0, err
        assert ('"truncation": 0.6' in out) == bool(extra), out
        with np.load(tmp_path / name / "samples.npz") as stored:
            written[name] = stored["x"]
    np.testing.assert_array_equal(written["a"], written["b"])
    assert not np.array_equal(written["a"], written["plain"])


def test_slerp_runs_along_the_great_circle_between_its_ends():
    z0, z1 = np.array([3.0, 0.0]), np.array([0.0, 3.0])
    path = slerp(z0, z1, np.linspace(0, 1, 5))
    np.testing.assert_allclose(path[0], z0, atol=1e-12)
    np.testing.assert_allclose(path[-1], z1, atol=1e-12)
    np.testing.assert_allclose(np.linalg.norm(path, axis=1), 3.0)  # on the circle, not cutting inside it
    np.testing.assert_allclose(path[2], [3 / np.sqrt(2)] * 2)


@pytest.mark.parametrize(
    "args, named",
    [
        (["classes=[10]"], "classes: 10 is not a class of this run (0 to 9)"),
        (["classes=[-1,2]"], "classes: -1"),
        (["interpolate=1"], "interpolate: needs at least 2 points"),
        (["format=jpg"], "format: unknown format 'jpg'"),
        (["sampling=drs"], "sampling: discriminator-driven sampling is for unconditional runs"),
        (["num_samples=0"], "num_samples"),
        (["checkpoint=7"], "checkpoint: no checkpoint at step 7"),
        (["toy", "classes=[1]"], "classes: this run is unconditional"),
        (["toy"], "format: ring8 samples are 2-D points"),
        (["truncation=0"], "truncation: must be > 0"),
        (["truncation=-0.5", "interpolate=3"], "truncation: must be > 0"),
        (["toy", "format=npz", "sampling=drs", "truncation=0.5"], "truncation: does not combine with sampling=drs"),
        (["full"], "out: "),
        ([], "out: required"),
    ],
)
def test_bad_input_is_one_line_and_writes_nothing(runs, tmp_path, capsys, args, named):
    run = runs["toy"] if "toy" in args else runs["conditional"]
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.png").write_bytes(b"the user's file")
    out = tmp_path / ("full" if "full" in args else "new")
    keys = [a for a in args if "=" in a] + ([] if not args and named.startswith("out") else [f"out={out}"])
    code, stdout, err = run_generate(capsys, f"run_dir={run}", *keys)
    assert code == 2 and stdout == ""
    assert len(err.strip().splitlines()) == 1 and named in err, err
    assert not (tmp_path / "new").exists()
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["mine.png"]


def test_overwrite_replaces_an_existing_output_and_keeps_the_other_files(runs, tmp_path, capsys):
    """Without overwrite=true a folder that is not empty is refused (tested above); with it the new
    samples replace the old ones of the same name, and the folder's other files stay."""
    out = tmp_path / "toy"
    code, _, err = run_generate(capsys, f"run_dir={runs['toy']}", f"out={out}", "format=npz", "num_samples=5")
    assert code == 0, err
    (out / "notes.txt").write_text("the user's notes")
    code, _, err = run_generate(
        capsys, f"run_dir={runs['toy']}", f"out={out}", "format=npz", "num_samples=9", "overwrite=true"
    )
    assert code == 0, err
    with np.load(out / "samples.npz") as stored:
        assert stored["x"].shape == (9, 2)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "samples.npz"]
    assert (out / "notes.txt").read_text() == "the user's notes"


@pytest.mark.parametrize("args", [["format=npz"], ["format=npz", "overwrite=true"], ["interpolate=3"], []])
def test_a_full_disk_is_one_line_leaves_nothing_behind_and_the_retry_works(runs, tmp_path, capsys, full_disk, args):
    run = runs["toy"] if "format=npz" in args else runs["conditional"]
    out = tmp_path / "deep" / "out"
    if "overwrite=true" in args:
        out.mkdir(parents=True)
        (out / "mine.txt").write_text("the user's file")
    before = snapshot(tmp_path)
    full_disk.append(tmp_path)
    code, stdout, err = run_generate(capsys, f"run_dir={run}", f"out={out}", "num_samples=4", *args)
    assert (code, stdout) == (2, "")
    assert err.strip() == f"gantrain-generate: error: cannot write or read {out} (No space left on device)", err
    assert snapshot(tmp_path) == before
    full_disk.clear()
    code, _, err = run_generate(capsys, f"run_dir={run}", f"out={out}", "num_samples=4", *args)
    assert code == 0, err


def test_an_out_folder_below_a_file_is_one_line(runs, tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("a file")
    before = snapshot(tmp_path)
    code, stdout, err = run_generate(capsys, f"run_dir={runs['conditional']}", f"out={tmp_path / 'notes.txt' / 'out'}")
    assert (code, stdout) == (2, "") and len(err.strip().splitlines()) == 1, err
    assert err.startswith("gantrain-generate: error: ") and "notes.txt" in err
    assert snapshot(tmp_path) == before
