"""The run directory loses nothing: checkpoints are found from their own files (the ``checkpoint``
index is a convenience), the saved config is what the run ran with, and one process at a time
writes a run."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gantrain.commands.generate import generate
from gantrain.errors import GantrainError
from gantrain.evaluation.measure import evaluate
from gantrain.run.train import train
from tests.conftest import TINY, gantrain_in_process, snapshot

TOY = [
    "model=mlp",
    *TINY["mlp"],
    "dataset=ring8",
    "dataset.num_points=200",
    "loss=wgan_gp",
    "train.batch_size=8",
    "train.n_critic=1",
    "train.log_every=1",
]


def toy_cfg(make_cfg, *extra):
    return make_cfg(*TOY, *extra)


def metric_steps(run: Path) -> list[int]:
    """The steps of metrics.jsonl's complete lines (a running process may be writing the last)."""
    lines = (run / "metrics.jsonl").read_text().splitlines(keepends=True)
    return [json.loads(line)["step"] for line in lines if line.endswith("\n")]


def index_steps(run: Path) -> list[int]:
    return sorted(int(p.name[5:-6]) for p in (run / "checkpoints").glob("ckpt-*.index"))


# What becomes of the index: deleted, garbled text, bytes that are not UTF-8.
DAMAGE = {
    "deleted": lambda index: index.unlink(),
    "garbled": lambda index: index.write_text('model_checkpoint_path: "ckpt-6\nnot a proto {{\n'),
    "not_utf8": lambda index: index.write_bytes(b"\xff\xfe\x00model_checkpoint_path\x81\n"),
}


@pytest.mark.parametrize("damage", DAMAGE)
def test_a_lost_index_finds_the_checkpoints_from_their_files(tmp_path, make_cfg, trained, caplog, damage):
    run = trained([*TOY, "train.steps=6", "train.checkpoint_every=2", "train.keep_checkpoints=3"], tmp_path / "run")
    DAMAGE[damage](run / "checkpoints" / "checkpoint")
    assert evaluate(run, num_samples=50)["step"] == 6
    assert generate(run, tmp_path / "out", format="npz", num_samples=8)["step"] == 6

    caplog.set_level(logging.INFO)
    resumed = toy_cfg(make_cfg, "train.steps=10", "train.checkpoint_every=2", "train.keep_checkpoints=3")
    assert train(resumed, run, resume=True)["step"] == 10
    assert f"resumed {run} at step 6" in caplog.text and "starting from step 0" not in caplog.text
    assert index_steps(run) == [6, 8, 10]  # the rebuilt index still rotates the rolling checkpoints


def test_eval_generate_and_resume_agree_on_the_latest_readable_checkpoint(tmp_path, make_cfg, caplog):
    run = tmp_path / "run"
    train(toy_cfg(make_cfg, "train.steps=6", "train.checkpoint_every=3"), run)
    next((run / "checkpoints").glob("ckpt-6.data-*")).write_bytes(b"\0" * 16)
    assert evaluate(run, num_samples=50)["step"] == 3
    assert generate(run, tmp_path / "out", format="npz", num_samples=8)["step"] == 3
    assert "cannot restore" in caplog.text and "ckpt-6" in caplog.text

    caplog.set_level(logging.INFO)
    train(toy_cfg(make_cfg, "train.steps=6", "train.checkpoint_every=3"), run, resume=True)
    assert f"resumed {run} at step 3" in caplog.text


def test_a_run_whose_checkpoints_are_all_unreadable_is_refused_not_restarted(tmp_path, make_cfg):
    run = tmp_path / "run"
    train(toy_cfg(make_cfg, "train.steps=4", "train.checkpoint_every=2"), run)
    (run / "checkpoints" / "checkpoint").unlink()
    for data in (run / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"\0" * 16)
    before = snapshot(run)
    with pytest.raises(GantrainError, match=r"no checkpoint in .* can be re"):
        train(toy_cfg(make_cfg, "train.steps=6"), run, resume=True)
    assert snapshot(run) == before


def test_a_value_from_the_environment_is_saved_as_the_run_ran_with_it(tmp_path, capsys, monkeypatch):
    """A run is what it ran with: resuming under another value of the variable (or none) changes
    nothing, and a change on the command line is refused as for any other key."""
    run = tmp_path / "run"

    def gantrain(*args):
        return gantrain_in_process(*args, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)

    monkeypatch.setenv("LR", "0.001")
    code, _, err = gantrain(*TOY, "train.steps=2", "train.g_lr=${oc.env:LR}", f"hydra.run.dir={run}")
    assert code == 0, err
    monkeypatch.setenv("LR", "0.5")
    code, _, err = gantrain(f"resume={run}", "train.steps=4")
    assert code == 0, err
    saved = (run / ".hydra" / "config.yaml").read_text()
    assert "${" not in saved and float(OmegaConf.create(saved).train.g_lr) == 0.001
    monkeypatch.delenv("LR")
    code, _, err = gantrain(f"resume={run}", "train.steps=6")
    assert code == 0, err
    assert float(OmegaConf.load(run / ".hydra" / "config.yaml").train.g_lr) == 0.001
    code, _, err = gantrain(f"resume={run}", "train.steps=8", "train.g_lr=0.5")
    assert code == 2 and err.startswith("gantrain: error: train.g_lr: cannot change when resuming")


# Another process holding a run directory's lock, as gantrain takes it: flock on <run>/.lock, its PID inside.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(600)
"""


def test_one_process_at_a_time_writes_a_run_and_a_killed_one_leaves_no_lock(tmp_path, make_cfg, capsys, monkeypatch):
    run = tmp_path / "run"
    train(toy_cfg(make_cfg, "train.steps=2"), run)
    before = snapshot(run)
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(run / ".lock")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "held\n"
        for second in ([f"resume={run}", "train.steps=3"], [*TOY, "train.steps=3", f"hydra.run.dir={run}"]):
            code, _, err = gantrain_in_process(*second, cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch)
            assert code == 2 and err == (
                "gantrain: error: run is in use by another gantrain process "
                f"(PID {holder.pid}); wait for it to end or stop it\n"
            ), err
        assert {k: v for k, v in snapshot(run).items() if k != ".lock"} == before
    finally:
        holder.kill()  # SIGKILL: the lock goes with the process
        holder.wait()
    code, out, err = gantrain_in_process(
        f"resume={run}", "train.steps=3", cwd=tmp_path, capsys=capsys, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert f"resumed {run} at step 2" in out and metric_steps(run) == [1, 2, 3]
    assert not (run / ".lock").exists()  # removed by the run that took it over
