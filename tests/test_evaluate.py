"""Mode-coverage metrics and ``gantrain-eval`` on runs of every dataset kind."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gantrain.data.toys import grid25_centers
from gantrain.errors import ConfigError
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.metrics import mode_metrics
from gantrain.models import build_models
from gantrain.run.train import train
from tests.conftest import TINY, cli_env, snapshot

FAST = ["train.steps=2", "train.batch_size=4", "train.n_critic=1", "train.checkpoint_every=1"]
# A finished toy run the error-case tests below read (each its own copy of one trained run).
TOY = ["model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=200"]


def test_samples_of_the_true_mixture_score_perfectly():
    centers = grid25_centers()
    rng = np.random.default_rng(0)
    samples = centers[rng.integers(25, size=20000)] + 0.05 * rng.standard_normal((20000, 2))
    result = mode_metrics(samples, centers, 0.05)
    assert result["modes"] == 25
    assert result["hq"] == pytest.approx(1 - math.exp(-4.5), abs=0.005)  # 2-D Gaussian within 3 sigma
    assert result["rkl"] < 0.005


def test_collapse_and_misses():
    centers = grid25_centers()
    one_mode = np.tile(centers[3], (100, 1)) + 0.01
    assert mode_metrics(one_mode, centers, 0.05) == {"modes": 1, "hq": 1.0, "rkl": pytest.approx(math.log(25))}
    between = centers[:10] + 1.0  # halfway between modes: none is high quality
    assert mode_metrics(between, centers, 0.05) == {"modes": 0, "hq": 0.0, "rkl": pytest.approx(math.log(25))}
    # Two modes, three samples to one and one to the other: KL((3/4, 1/4) || uniform over 25)
    two = np.array([centers[0], centers[0], centers[0], centers[1]])
    expected = 0.75 * math.log(0.75 * 25) + 0.25 * math.log(0.25 * 25)
    assert mode_metrics(two, centers, 0.05)["rkl"] == pytest.approx(expected)


def make_folder(tmp_path):
    for i, size in enumerate([(20, 12), (9, 9), (16, 30)]):
        sub = tmp_path / "images" / ("cats" if i % 2 else "dogs")
        sub.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.full((*size[::-1], 3), 40 * i, np.uint8)).save(sub / f"{i}.png")
    return tmp_path / "images"


@pytest.fixture
def dataset_args(tmp_path, mnist_npz, cifar_archive):
    return {
        "grid25": ["dataset=grid25", "dataset.num_points=300"],
        "mnist": ["dataset=mnist", f"dataset.path={mnist_npz}"],
        "cifar10": ["dataset=cifar10", f"dataset.path={cifar_archive}"],
        "folder": ["dataset=folder", f"dataset.path={make_folder(tmp_path)}", "dataset.resolution=8"],
    }


@pytest.mark.parametrize(
    "kind, shape", [("grid25", (2,)), ("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3)), ("folder", (8, 8, 3))]
)
def test_eval_and_export_round_trip(tmp_path, make_cfg, dataset_args, kind, shape):
    model = "mlp" if kind == "grid25" else "dcgan"
    cfg = make_cfg(f"model={model}", *TINY[model], *FAST, *dataset_args[kind])
    run = tmp_path / "run"
    train(cfg, run)
    export = tmp_path / "samples.npz"
    result = evaluate(run, num_samples=30, export=export, features="auto" if kind == "mnist" else "none")
    assert json.loads((run / "eval.json").read_text()) == result
    assert (result["step"], result["num_samples"]) == (2, 30)
    x = np.load(export)["x"]
    assert x.shape == (30, *shape)
    if kind == "grid25":
        assert x.dtype == np.float32
        assert {k: result[k] for k in ("modes", "hq", "rkl")} == mode_metrics(x, grid25_centers(), 0.05)
    elif kind == "mnist":  # gantrain's classifier, trained on the fixture's 64 images
        assert x.dtype == np.uint8
        assert {"fid", "kid", "kid_std", "is", "is_std", "classes_hit", "class_kl"} <= set(result)
        assert all(math.isfinite(result[k]) for k in ("fid", "kid", "is", "class_kl"))
    else:
        assert x.dtype == np.uint8
        assert result["pixel_mean"] == pytest.approx(x.mean())
        assert result["pixel_std"] == pytest.approx(x.std())


def test_eval_uses_the_moving_average_and_any_kept_step(tmp_path, make_cfg):
    cfg = make_cfg("model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=200", "train.ema=0.5")
    run = tmp_path / "run"
    train(cfg, run)
    x = {}
    for step in (1, 2):
        export = tmp_path / f"s{step}.npz"
        assert evaluate(run, num_samples=7, checkpoint=str(step), export=export)["step"] == step
        x[step] = np.load(export)["x"]
    assert not np.allclose(x[1], x[2])
    # The exported samples are the averaged generator's on the fixed evaluation noise.
    generators = {}
    for name in ("generator", "ema_generator"):
        generators[name], _ = build_models(cfg.model, (2,))
        tf.train.Checkpoint(**{name: generators[name]}).restore(str(run / "checkpoints" / "ckpt-2")).expect_partial()
    noise = tf.random.stateless_normal([7, 4], seed=[0, 2])
    np.testing.assert_allclose(x[2], generators["ema_generator"](noise).numpy(), rtol=1e-6)
    assert not np.allclose(x[2], generators["generator"](noise).numpy())


def test_eval_errors_name_the_argument(tmp_path, make_cfg):
    with pytest.raises(ConfigError, match="^run_dir: .* is not a gantrain run"):
        evaluate(tmp_path)
    cfg = make_cfg("model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=200")
    train(cfg, tmp_path / "run")
    with pytest.raises(ConfigError, match=r"^checkpoint: no checkpoint at step 7; kept: 0, 1, 2 \(or latest\)$"):
        evaluate(tmp_path / "run", checkpoint="7")
    with pytest.raises(ConfigError, match="^export: must name a .npz file"):
        evaluate(tmp_path / "run", export=tmp_path / "x.csv")
    with pytest.raises(ConfigError, match="^checkpoint: .* has no best checkpoint"):
        evaluate(tmp_path / "run", checkpoint="best")
    with pytest.raises(ConfigError, match="^features: unknown extractor 'vgg'"):
        evaluate(tmp_path / "run", features="vgg")


@pytest.mark.slow
def test_gantrain_eval_command(tmp_path, make_cfg):
    cfg = make_cfg("model=mlp", *TINY["mlp"], *FAST, "dataset=grid25", "dataset.num_points=300")
    train(cfg, tmp_path / "run")
    command = [sys.executable, "-m", "gantrain.commands.evaluate"]
    done = subprocess.run(
        [*command, f"run_dir={tmp_path / 'run'}", "num_samples=50"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    metrics = {"step", "num_samples", "modes", "hq", "rkl", "precision", "recall", "density", "coverage"}
    assert metrics | {"protocol"} == set(result) and result["protocol"]["samples"] == 50
    bad = subprocess.run(
        [*command, f"run_dir={tmp_path / 'run'}", "num_sample=5"],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=300,
    )
    assert bad.returncode == 2
    assert (
        bad.stderr.strip().splitlines()[-1]
        == "gantrain-eval: error: num_sample: not an option of gantrain-eval; did you mean num_samples?"
    )


def test_inception_metrics_of_an_rgb_run(tmp_path, make_cfg, cifar_archive, monkeypatch):
    """The Inception path end to end, with a randomly initialised network (no weights offline)."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cfg = make_cfg("model=dcgan", *TINY["dcgan"], *FAST, "dataset=cifar10", f"dataset.path={cifar_archive}")
    train(cfg, tmp_path / "run")
    result = evaluate(tmp_path / "run", num_samples=20, features="inception", weights="random")
    assert {"fid", "kid", "is"} <= set(result) and all(math.isfinite(result[k]) for k in ("fid", "kid", "is"))
    assert list(tmp_path.glob("gantrain_stats_cifar10_inception_random_train_*.npz"))  # beside the archive


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    """A labelled 24-image MNIST and a 20-image CIFAR-10, for every (data, extractor) pair: the pairs
    with Inception resize every real and fake image to 299x299, so the sets are as small as the
    metrics allow (more than 5 of each for density and coverage)."""
    from tests.conftest import write_cifar_batches

    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    labels = np.arange(24, dtype=np.uint8) % 10
    np.savez(
        root / "mnist.npz",
        x_train=rng.integers(0, 256, (24, 28, 28), dtype=np.uint8),
        y_train=labels,
        x_test=rng.integers(0, 256, (16, 28, 28), dtype=np.uint8),
        y_test=labels[:16],
    )
    write_cifar_batches(root / "cifar-10-batches-py")
    return {
        "grid25": {"num_points": 300},
        "stacked_mnist": {"path": str(root / "mnist.npz"), "num_points": 64},
        "mnist": {"path": str(root / "mnist.npz")},
        "cifar10": {"path": str(root / "cifar-10-batches-py")},
    }


MANIFOLD = {"precision", "recall", "density", "coverage"}
DISTANCES = {"fid", "kid", "kid_std", "is", "is_std"} | MANIFOLD
PIXELS = {"pixel_mean", "pixel_std", "real_pixel_mean", "real_pixel_std"}
# The metrics table of docs/guides/evaluation.md: what each (data, extractor) pair gets; None: refused before a run.
README_TABLE = {
    **{
        ("grid25", features): {"modes", "hq", "rkl"} | MANIFOLD
        for features in ("auto", "classifier", "inception", "none")
    },
    ("stacked_mnist", "auto"): {"modes", "mode_kl"},
    ("stacked_mnist", "classifier"): {"modes", "mode_kl"},
    ("stacked_mnist", "inception"): None,
    ("stacked_mnist", "none"): PIXELS,
    ("mnist", "auto"): DISTANCES | {"classes_hit", "class_kl"},
    ("mnist", "classifier"): DISTANCES | {"classes_hit", "class_kl"},
    ("mnist", "inception"): DISTANCES,
    ("mnist", "none"): PIXELS,
    ("cifar10", "auto"): DISTANCES,
    ("cifar10", "classifier"): None,
    ("cifar10", "inception"): DISTANCES,
    ("cifar10", "none"): PIXELS,
}


@pytest.mark.parametrize("name, features", README_TABLE)
def test_the_check_before_a_run_and_the_evaluation_agree_on_every_pair(tmp_path, make_cfg, small_data, name, features):
    """The evaluation guide's table decides: a pair it refuses stops train() before anything is written; a
    pair it accepts gets exactly the metrics it names."""
    from omegaconf import OmegaConf

    from gantrain.data import DATASETS
    from gantrain.evaluation.measure import sample_metrics
    from gantrain.evaluation.plan import evaluation_plan

    node = OmegaConf.create({"name": name, **small_data[name]})
    if README_TABLE[name, features] is None:
        model = "mlp" if name == "grid25" else "dcgan"
        cfg = make_cfg(
            f"model={model}",
            *TINY[model],
            f"dataset={name}",
            *(f"dataset.{k}={v}" for k, v in small_data[name].items()),
            f"eval.features={features}",
            "eval.every=1",
            "train.steps=1",
        )
        with pytest.raises(ConfigError, match="^eval.features: "):
            train(cfg, tmp_path / "run")
        assert not (tmp_path / "run").exists()
        return
    dataset = DATASETS.build(node)
    samples = np.random.default_rng(1).uniform(-1, 1, (12, *dataset.shape)).astype(np.float32)
    metrics, _ = sample_metrics(node, dataset, samples, evaluation_plan(name, features), weights="random")
    assert set(metrics) == README_TABLE[name, features]


def test_fid_and_kid_of_a_subset_run_use_the_whole_split(tmp_path, make_cfg, mnist_npz):
    """A run on dataset.subset=16 of the file's 64 training images: its FID and KID are those of its
    samples against the classifier features of all 64, not of the 16 it trained on."""
    from omegaconf import OmegaConf

    from gantrain.data import load
    from gantrain.evaluation.features import classifier
    from gantrain.evaluation.metrics import (
        frechet_distance,
        gaussian_statistics,
        kernel_inception_distance,
    )

    run = tmp_path / "run"
    train(
        make_cfg(
            "model=dcgan", *TINY["dcgan"], *FAST, "dataset=mnist", f"dataset.path={mnist_npz}", "dataset.subset=16"
        ),
        run,
    )
    result = evaluate(run, num_samples=30, export=tmp_path / "samples.npz", features="classifier")
    node = OmegaConf.load(run / ".hydra" / "config.yaml").dataset
    model = classifier.load_or_train(node)  # the one the evaluation trained and cached
    samples, _ = classifier.embed(model, np.load(tmp_path / "samples.npz")["x"])
    whole, _ = classifier.embed(model, np.load(mnist_npz)["x_train"][..., None])
    trained_on, _ = classifier.embed(model, load(node).x)
    assert len(whole) == 64 and len(trained_on) == 16

    def fid_kid(real):
        return (
            frechet_distance(*gaussian_statistics(samples), *gaussian_statistics(real)),
            kernel_inception_distance(samples, real, subset_size=len(samples))[0],
        )

    assert (result["fid"], result["kid"]) == pytest.approx(fid_kid(whole), rel=1e-4)
    assert fid_kid(trained_on)[0] != pytest.approx(fid_kid(whole)[0], rel=1e-2)  # the two references differ


def run_eval(capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of gantrain-eval's entry point, run in this process."""
    from gantrain.commands.evaluate import main

    try:
        main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return code, out, err


def test_export_keeps_an_existing_file_unless_overwrite_is_given(tmp_path, trained, capsys):
    trained(TOY, tmp_path / "run")
    mine = tmp_path / "mine.npz"
    np.savez(mine, x_train=np.arange(5))
    before = mine.read_bytes()
    capsys.readouterr()
    code, out, err = run_eval(capsys, f"run_dir={tmp_path / 'run'}", "num_samples=7", f"export={mine}")
    assert (code, out) == (2, "")
    assert err.strip() == f"gantrain-eval: error: export: {mine} exists; choose a new name or add overwrite=true"
    assert mine.read_bytes() == before and not (tmp_path / "run" / "eval.json").exists()
    code, out, err = run_eval(
        capsys, f"run_dir={tmp_path / 'run'}", "num_samples=7", f"export={mine}", "overwrite=true"
    )
    assert code == 0, err
    assert np.load(mine)["x"].shape == (7, 2)
    folder = tmp_path / "a_folder.npz"
    folder.mkdir()
    code, _, err = run_eval(capsys, f"run_dir={tmp_path / 'run'}", f"export={folder}", "overwrite=true")
    assert code == 2 and err.strip() == f"gantrain-eval: error: export: {folder} is a folder; name a file"
    assert "overwrite=False" in run_eval(capsys, "--help")[1]


def test_an_export_that_cannot_be_written_is_one_line_and_leaves_nothing(tmp_path, trained, capsys, full_disk):
    trained(TOY, tmp_path / "run")
    (tmp_path / "notes.txt").write_text("a file")
    full_disk.append(tmp_path / "full")
    before = snapshot(tmp_path)
    capsys.readouterr()
    for export in (tmp_path / "full" / "deep" / "x.npz", tmp_path / "notes.txt" / "x.npz"):
        code, out, err = run_eval(capsys, f"run_dir={tmp_path / 'run'}", "num_samples=7", f"export={export}")
        assert (code, out) == (2, "") and len(err.strip().splitlines()) == 1, err
        assert err.startswith("gantrain-eval: error: cannot write or read ") and str(export.parent) in err, err
        assert snapshot(tmp_path) == before


def test_an_eval_json_that_is_a_folder_is_one_line(tmp_path, trained, capsys):
    trained(TOY, tmp_path / "run")
    (tmp_path / "run" / "eval.json").mkdir()
    capsys.readouterr()
    code, out, err = run_eval(capsys, f"run_dir={tmp_path / 'run'}", "num_samples=7")
    assert (code, out) == (2, "")
    assert err.strip().startswith("gantrain-eval: error: cannot write or read ") and "eval.json" in err, err
    assert len(err.strip().splitlines()) == 1 and [p.name for p in (tmp_path / "run" / "eval.json").iterdir()] == []


def test_gantrain_eval_records_the_truncation_and_refuses_a_bad_one(tmp_path, trained, capsys):
    """psi is in the result row (and eval.json) and changes the samples; psi <= 0, or psi with D
    drawing its own noise, is one line, exit 2, and no eval.json."""
    run = trained(TOY, tmp_path / "run")
    capsys.readouterr()
    exports = {}
    for name, extra in (("plain", []), ("truncated", ["truncation=0.5"])):
        code, out, err = run_eval(capsys, f"run_dir={run}", "num_samples=7", f"export={tmp_path / name}.npz", *extra)
        assert code == 0, err
        row = json.loads(out)
        assert row == json.loads((run / "eval.json").read_text())
        assert row.get("truncation") == (0.5 if extra else None)
        exports[name] = np.load(tmp_path / f"{name}.npz")["x"]
    assert not np.array_equal(exports["plain"], exports["truncated"])
    (run / "eval.json").unlink()
    for bad, named in (("truncation=0", "truncation: must be > 0"), ("truncation=nan", "truncation: must be > 0")):
        code, out, err = run_eval(capsys, f"run_dir={run}", bad)
        assert (code, out) == (2, "") and err.strip().startswith(f"gantrain-eval: error: {named}"), err
        assert len(err.strip().splitlines()) == 1
    code, out, err = run_eval(capsys, f"run_dir={run}", "sampling=drs", "truncation=0.5")
    assert code == 2 and err.strip() == (
        "gantrain-eval: error: truncation: does not combine with sampling=drs, which draws its own noise"
    ), err
    assert not (run / "eval.json").exists()
