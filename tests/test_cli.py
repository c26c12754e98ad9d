"""The real ``gantrain`` command in a subprocess: help, a run, resume, bitwise resume, multirun."""

from __future__ import annotations

import csv
import json
import math
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from gantrain.commands.train import ending
from gantrain.pictures import PAD
from tests.conftest import TINY, assert_same_state, gantrain, write_mnist_npz


def tiny_mnist_run(mnist_npz: Path, run_dir: Path, steps: int, *extra: str) -> list[str]:
    return [
        "model=dcgan",
        "loss=wgan_gp",
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        *TINY["dcgan"],
        f"train.steps={steps}",
        "train.batch_size=16",
        "train.sample_every=3",
        "train.checkpoint_every=3",
        "train.n_critic=1",  # the console script's runs, not the critic loop: a third of the tracing
        f"hydra.run.dir={run_dir}",
        *extra,
    ]


def test_help_lists_groups_and_options_from_any_directory(tmp_path):
    result = gantrain("--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for line in (
        "model: dcgan, mlp, r3gan, resnet",
        "loss: gan, hinge, lsgan, nsgan, rpgan, wgan, wgan_gp",
        "dataset: cifar10, fashion_mnist, folder, grid25, mnist, ring8",
        "strategy: default",
        "aux: gon",
        "logger: csv, mlflow, tensorboard, wandb",
        "experiment: cifar10_resnet_wgan_gp, grid25, mnist_conditional, mnist_dcgan_hinge, mnist_dcgan_wgan_gp, "
        "pacgan_grid25, pacgan_ring8, r3gan_cifar10, r3gan_folder, r3gan_mnist, r3gan_stacked_mnist, ring8, "
        "stacked_mnist",
    ):
        assert line in result.stdout
    assert "gp_weight: 10.0" in result.stdout and "n_critic: 5" in result.stdout
    assert list(tmp_path.iterdir()) == []  # --help writes nothing


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict:
    """Three console-script runs the tests below read, each paying TensorFlow's start-up once:
    6 steps straight; 3 steps; then that run resumed to 6 in its own directory."""
    root = tmp_path_factory.mktemp("cli")
    mnist_npz = write_mnist_npz(root)
    straight, split = root / "straight", root / "split"
    done = {
        "straight": gantrain(*tiny_mnist_run(mnist_npz, straight, 6), cwd=root, env_home=root),
        "split": gantrain(*tiny_mnist_run(mnist_npz, split, 3), cwd=root, env_home=root),
    }
    done["resume"] = gantrain(f"resume={split}", "train.steps=6", cwd=root, env_home=root)
    return {"root": root, "straight": straight, "split": split, "done": done}


@pytest.mark.slow
def test_a_run_writes_its_config_samples_checkpoints_and_metrics(runs):
    run, result = runs["straight"], runs["done"]["straight"]
    assert result.returncode == 0, result.stderr
    assert (run / ".hydra" / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000003.png", "step_000006.png"]
    assert (run / "checkpoints" / "ckpt-6.index").is_file() and any((run / "tb").iterdir())
    grid = Image.open(run / "samples" / "step_000006.png")
    assert grid.size == (8 * (28 + PAD) + PAD,) * 2  # 64 samples as an 8x8 grid of 28x28 tiles
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert last["step"] == 6 and all(math.isfinite(last[k]) for k in ("d_loss", "g_loss", "gp"))


@pytest.mark.slow
def test_resume_continues_in_the_same_directory(runs):
    run, result = runs["split"], runs["done"]["resume"]
    assert runs["done"]["split"].returncode == 0 and result.returncode == 0, result.stderr
    assert f"resumed {run} at step 3" in result.stdout
    assert (run / "checkpoints" / "ckpt-6.index").is_file() and (run / "samples" / "step_000006.png").is_file()
    steps = [json.loads(line)["step"] for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert steps == [3, 6]
    assert sorted(p.name for p in runs["root"].iterdir() if p.is_dir()) == [
        "split",
        "straight",
    ]  # no third run directory


@pytest.mark.slow
def test_resume_is_bitwise_identical_to_a_straight_run(runs):
    straight, split = runs["straight"], runs["split"]
    assert all(result.returncode == 0 for result in runs["done"].values())
    png = "samples/step_000006.png"
    assert (straight / png).read_bytes() == (split / png).read_bytes()
    assert_same_state(*(str(run / "checkpoints" / "ckpt-6") for run in (straight, split)))


@pytest.mark.slow
def test_multirun_writes_a_summary_row_per_job(tmp_path):
    sweep = tmp_path / "sw"
    result = gantrain(
        "-m",
        "model=mlp",
        "dataset=grid25",
        "loss=gan,wgan_gp",
        "debug=tiny",
        "train.steps=3",
        "train.n_critic=1",
        "dataset.num_points=1000",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in sweep.iterdir() if p.is_dir()) == ["0", "1"]
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [row["job"] for row in rows] == ["0", "1"]
    assert ["loss=gan" in rows[0]["overrides"], "loss=wgan_gp" in rows[1]["overrides"]] == [True, True]
    assert {row["status"] for row in rows} == {"completed"} and {row["step"] for row in rows} == {"3"}
    assert rows[0]["gp"] == "" and float(rows[1]["gp"]) >= 0
    assert all(math.isfinite(float(row[k])) for row in rows for k in ("d_loss", "g_loss"))


@pytest.mark.slow
def test_a_failed_job_is_a_summary_row_and_the_sweep_goes_on(tmp_path):
    sweep = tmp_path / "sw"
    result = gantrain(
        "-m",
        "dataset=ring8",
        "model=dcgan,mlp",
        "train.steps=2",
        "train.n_critic=1",
        "model.z_dim=4",
        "dataset.num_points=100",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert "gantrain: error: model: dcgan needs images" in result.stderr
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [(row["status"], row["step"]) for row in rows] == [("failed", ""), ("completed", "2")]
    assert "dcgan needs images" in rows[0]["error"]


@pytest.mark.parametrize("name", ["my run", "it's", "a$HOME;b", "a&(b),c\\"])
def test_the_next_commands_quote_a_run_directory_holding_shell_characters(tmp_path, name):
    """Each suggested command, pasted into a shell, names the run directory as one argument; the
    resume's is an override, which Hydra must read back as the run directory too."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    run = tmp_path / name
    text = ending({"step": 3, "d_loss": 0.5}, run, 6, "ring8")
    commands = [line.split("#")[0].split(None, 1) for line in text.split("Next:\n")[1].splitlines()]
    # What the shell passes to each program: printf prints its arguments one per line.
    pasted = [
        subprocess.run(["sh", "-c", f"printf '%s\\n' {args}"], capture_output=True, text=True).stdout.splitlines()
        for _, args in commands
    ]
    assert [program for program, _ in commands] == ["gantrain-eval", "gantrain-generate", "tensorboard", "gantrain"]
    assert pasted[:3] == [
        [f"run_dir={run}"],
        [f"run_dir={run}", f"out={run}/generated", "format=npz"],
        ["--logdir", str(run)],
    ]
    (resume,) = pasted[3]
    assert OverridesParser.create().parse_override(resume).value() == str(run)
