"""Runs survive: SIGKILL at random moments, SIGTERM, divergence, corrupt checkpoints, a full disk,
and bad input (which must change nothing)."""

from __future__ import annotations

import json
import math
import os
import random
import signal
import time
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gantrain.errors import GantrainError
from gantrain.run.train import train
from tests import preloaded
from tests.conftest import (
    TINY,
    assert_equal_up_to_round_off,
    assert_same_state,
    checkpoint_values,
    cli_env,
    fake_images,
    gantrain,
    gantrain_in_process,
    snapshot,
    wait_until,
    write_idx,
)

# One critic update per step: these tests are about processes, signals and files, and five (the
# loss's default) more than double the time to trace and start each run's step.
TOY = ["model=mlp", *TINY["mlp"], "dataset=ring8", "dataset.num_points=1000", "loss=wgan_gp", "train.n_critic=1"]


def metric_steps(run: Path) -> list[int]:
    """Steps of the complete lines of metrics.jsonl (a line cut by a kill is not complete)."""
    steps = []
    for line in (run / "metrics.jsonl").read_text().splitlines() if (run / "metrics.jsonl").exists() else []:
        try:
            steps.append(json.loads(line)["step"])
        except json.JSONDecodeError:
            pass
    return steps


def latest_checkpoint_step(run: Path) -> int | None:
    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    return int(latest.rsplit("-", 1)[1]) if latest else None


@pytest.mark.slow
def test_sigkill_at_ten_random_moments_loses_at_most_checkpoint_every(tmp_path, capfd, monkeypatch):
    steps, every = 1000, 25  # ten kills train at most 10 x 3 x 25 = 750 steps: each comes before the end
    args = [
        *TOY,
        f"train.steps={steps}",
        f"train.checkpoint_every={every}",
        "train.log_every=1",
        "train.sample_every=100",
    ]
    run = tmp_path / "run"
    chance = random.Random(20261123)
    kills_mid_training = 0
    for kill in range(10):
        # Before the first kill, or if a kill came before the run directory existed: a new run.
        command = [f"resume={run}"] if (run / ".hydra" / "config.yaml").exists() else [*args, f"hydra.run.dir={run}"]
        before = max(metric_steps(run), default=0)
        started = time.monotonic()
        # A process of its own, forked with TensorFlow imported: ten imports would cost a minute,
        # and the import writes nothing a kill could damage.
        process = preloaded.start(command, tmp_path, cli_env(tmp_path), tmp_path / "stdout", tmp_path / "stderr")
        # The moment is counted in steps trained since the start (at most 3 x 25 a kill, far from the
        # run's end however fast the machine), and for odd kills also in seconds: any moment,
        # start-up included (composing the config, the checks, opening the run directory, building
        # and tracing). Even kills always come after training has resumed.
        steps_in, seconds = chance.randint(1, 3 * every), chance.uniform(0.2, 4.0) if kill % 2 else math.inf
        wait_until(
            lambda: (
                max(metric_steps(run), default=0) >= before + steps_in  # noqa: B023  called before the loop moves on
                or not process.is_alive()  # noqa: B023  likewise
                or time.monotonic() - started > seconds  # noqa: B023  likewise
            ),
            f"step {before + steps_in} logged",
        )
        process.kill()  # SIGKILL; nothing if it has ended
        process.join()
        assert process.exitcode in (0, -signal.SIGKILL), (tmp_path / "stderr").read_text()
        done, saved = metric_steps(run), latest_checkpoint_step(run)
        if done:
            assert saved is not None and saved >= max(done) - every, (kill, max(done), saved)
        kills_mid_training += process.exitcode == -signal.SIGKILL and 0 < max(done, default=0) < steps
    assert kills_mid_training >= 5  # most kills hit a training run, not start-up or a finished run
    # The last resume and the straight run go through the real entry point in this process: the
    # kills above needed processes of their own, these two do not pay TensorFlow's start-up again.
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    code, _, err = gantrain_in_process(f"resume={run}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch)
    assert code == 0, err
    assert latest_checkpoint_step(run) == steps
    assert metric_steps(run) == list(range(1, steps + 1))  # no duplicated, missing or torn lines

    # Killed and resumed ten times, the run still ends exactly where an uninterrupted one does, one
    # that reports and saves only every 100 steps, 100 steps a call (neither changes what is trained).
    straight = tmp_path / "straight"
    rarely = [
        "train.log_every=100",
        "train.sample_every=100",
        f"train.checkpoint_every={steps}",
        "train.steps_per_call=100",
    ]
    code, _, err = gantrain_in_process(
        *args, *rarely, f"hydra.run.dir={straight}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert_same_state(*(str(r / "checkpoints" / f"ckpt-{steps}") for r in (run, straight)))


@pytest.mark.slow
def test_sigterm_checkpoints_the_current_step_and_exits_zero(tmp_path, capfd, monkeypatch):
    run = tmp_path / "run"
    args = [*TOY, "train.steps=100000", "train.checkpoint_every=100000", "train.log_every=1", f"hydra.run.dir={run}"]
    # A process of its own, forked with TensorFlow imported (tests/preloaded.py): what is tested is
    # what the command does with the signal, not the interpreter's start.
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    process = preloaded.start(args, tmp_path, cli_env(tmp_path), stdout, stderr)
    wait_until(lambda: len(metric_steps(run)) >= 20 or not process.is_alive(), "20 logged steps")
    assert process.is_alive(), stderr.read_text()
    process.terminate()  # SIGTERM
    sent = time.monotonic()
    process.join(timeout=60)
    assert time.monotonic() - sent < 30
    assert process.exitcode == 0, stderr.read_text()
    assert latest_checkpoint_step(run) == metric_steps(run)[-1] > 0  # a checkpoint at the current step
    assert "stopped by SIGTERM" in stdout.read_text()

    stopped_at = latest_checkpoint_step(run)  # resumed through the real entry point, in this process
    code, _, err = gantrain_in_process(
        f"resume={run}", f"train.steps={stopped_at + 5}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    assert code == 0, err
    assert latest_checkpoint_step(run) == stopped_at + 5


ABSURD_LR = [
    "loss=nsgan",
    "train.n_critic=1",
    "train.g_lr=1e12",
    "train.d_lr=1e12",
    "train.steps=20",
    "train.checkpoint_every=5",
]


def test_divergence_stops_with_a_message_and_keeps_the_good_checkpoint(tmp_path, capfd, monkeypatch):
    """The real entry point in this process: the console output and exit code a user sees."""
    run = tmp_path / "run"
    code, _, err = gantrain_in_process(
        *TOY, *ABSURD_LR, f"hydra.run.dir={run}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    assert code != 0 and "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("gantrain: error:")]
    # Step 1's update throws the weights far out; step 2's losses are the first non-finite values.
    assert len(errors) == 1 and "training diverged: non-finite" in errors[0] and " at step 2;" in errors[0], errors
    assert "the last good checkpoint (step 0) is kept" in errors[0] and latest_checkpoint_step(run) == 0
    values = checkpoint_values(tf.train.latest_checkpoint(str(run / "checkpoints")))
    assert all(np.isfinite(v).all() for v in values.values() if np.issubdtype(np.asarray(v).dtype, np.floating))


def test_rollback_recovers_and_finishes(tmp_path, capfd, monkeypatch):
    run = tmp_path / "run"
    code, out, err = gantrain_in_process(
        *TOY,
        *ABSURD_LR,
        "train.nan_policy=rollback",
        "train.rollback_lr_factor=1e-14",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    assert "rolled back to step 0 with learning rates x1e-14 (rollback 1 of 3)" in out
    assert latest_checkpoint_step(run) == 20
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert all(math.isfinite(line["d_loss"]) and math.isfinite(line["g_loss"]) for line in lines)


SHORT = [*TOY, "train.batch_size=8", "train.log_every=1"]
TWO_STEPS = [*SHORT, "train.steps=2"]  # a finished run that the tests below damage or resume (each its own copy)


def tiny_cfg(make_cfg, *extra):
    return make_cfg(*SHORT, *extra)


def test_corrupt_latest_checkpoint_falls_back_to_the_previous(tmp_path, make_cfg, caplog):
    run = tmp_path / "run"
    train(tiny_cfg(make_cfg, "train.steps=6", "train.checkpoint_every=3"), run)
    data = next((run / "checkpoints").glob("ckpt-6.data-*"))
    data.write_bytes(b"\0" * 16)
    result = train(tiny_cfg(make_cfg, "train.steps=9", "train.checkpoint_every=3"), run, resume=True)
    assert result["step"] == 9
    assert "cannot restore" in caplog.text and "ckpt-6" in caplog.text
    assert metric_steps(run) == list(range(1, 10))


def test_resume_into_an_incompatible_model_is_one_clear_line(tmp_path, make_cfg, trained):
    run = tmp_path / "run"
    trained(TWO_STEPS, run)
    with pytest.raises(GantrainError) as err:
        train(tiny_cfg(make_cfg, "train.steps=4", "model.g_hidden=[32]"), run, resume=True)
    assert str(err.value).startswith("resume: no checkpoint in ") and "\n" not in str(err.value)


def test_a_full_disk_is_a_clear_error_and_keeps_the_checkpoint(tmp_path, make_cfg):
    run = tmp_path / "run"
    run.mkdir()
    (run / "metrics.jsonl").symlink_to("/dev/full")  # every write fails with ENOSPC
    with pytest.raises(
        GantrainError, match=r"cannot write into .*No space left on device.*checkpoint \(step 0\) is kept"
    ):
        train(tiny_cfg(make_cfg, "train.steps=3"), run)
    assert latest_checkpoint_step(run) == 0


def test_keep_checkpoints_bounds_the_rolling_checkpoints(tmp_path, make_cfg):
    run = tmp_path / "run"
    train(tiny_cfg(make_cfg, "train.steps=10", "train.checkpoint_every=1", "train.keep_checkpoints=2"), run)
    assert sorted(p.name for p in (run / "checkpoints").glob("*.index")) == ["ckpt-10.index", "ckpt-9.index"]


@pytest.fixture
def bad_files(tmp_path: Path, mnist_npz: Path) -> dict[str, Path]:
    """Good and bad dataset files, all in tmp_path (where nothing may change)."""
    truncated = tmp_path / "train-images-idx3-ubyte"
    write_idx(truncated, fake_images(4, 28, 28))
    truncated.write_bytes(truncated.read_bytes()[:-7])
    wrong_shape = tmp_path / "wrong.npz"
    np.savez(wrong_shape, x_train=fake_images(4, 32, 32))
    text = tmp_path / "notes.txt"
    text.write_text("not data")
    (tmp_path / "empty").mkdir()
    (tmp_path / "images").mkdir()
    Image.fromarray(fake_images(1, 12, 12, 3)[0]).save(tmp_path / "images" / "a.png")
    return {
        "mnist": mnist_npz,
        "truncated": truncated,
        "wrong_shape": wrong_shape,
        "text": text,
        "empty": tmp_path / "empty",
        "missing": tmp_path / "missing.npz",
        "images": tmp_path / "images",
    }


@pytest.fixture
def existing_run(tmp_path: Path) -> Path:
    run = tmp_path / "existing"
    (run / ".hydra").mkdir(parents=True)
    (run / ".hydra" / "config.yaml").write_text("train:\n  steps: 5\n")
    (run / "metrics.jsonl").write_text('{"step": 5}\n')
    return run


# (overrides, what the one error line must name). {run} is a directory holding a run; every case
# also targets it with hydra.run.dir, and none may change it.
BAD_INPUTS = [
    ("loss.gp_weight=-1", "loss.gp_weight"),
    ("loss.gp_weight=heavy", "loss.gp_weight"),
    ("loss=gan loss.clip=0.1", "loss.clip"),  # clipping belongs to loss=wgan
    ("loss.penalty=l2", "loss.penalty"),
    ("loss=nsgan loss.penalty=r1 loss.one_sided=true", "loss.one_sided"),
    ("aux=gon aux.beta=0", "aux.beta"),
    ("eval.every=5 eval.select=hq", "eval.select"),  # hq is a toy metric, not an MNIST one
    ("train.n_critic=0", "train.n_critic"),
    ("train.batch_size=0", "train.batch_size"),
    ("train.batch_size=1.5", "train.batch_size"),
    ("train.steps=0", "train.steps"),
    ("train.steps=abc", "train.steps"),
    ("train.steps=[1", "train.steps"),
    ("train.g_lr=0", "train.g_lr"),
    ("train.g_lr=${{oc.env:GANTRAIN_NOT_SET}}", "train.g_lr: cannot be resolved"),  # an unset variable
    ("train.d_lr=-1e-4", "train.d_lr"),
    ("train.beta1=1", "train.beta1"),
    ("train.beta2=-0.1", "train.beta2"),
    ("train.sample_every=0", "train.sample_every"),
    ("train.checkpoint_every=0", "train.checkpoint_every"),
    ("train.log_every=-5", "train.log_every"),
    ("train.keep_checkpoints=0", "train.keep_checkpoints"),
    ("train.num_samples=0", "train.num_samples"),
    ("train.seed=-1", "train.seed"),
    ("train.nan_policy=sometimes", "train.nan_policy"),
    ("train.rollback_lr_factor=2", "train.rollback_lr_factor"),
    ("train.top_k=0", "train.top_k"),
    ("train.augment=[translation,flip]", "train.augment: unknown transform 'flip'"),
    ("train.augment=[cutout] train.augment_p=1.5", "train.augment_p"),
    ("train.augment=[cutout] train.augment_p=often", "train.augment_p"),
    ("train.augment=[cutout] dataset=ring8 model=mlp", "train.augment"),  # 2-D points are not images
    ("train.pack=0", "train.pack"),
    ("train.pack=3", "train.pack: must divide train.batch_size (64) into whole packs"),
    ("model.d_maxout=5", "model.d_maxout"),  # maxout units are the mlp's
    (
        "model=mlp dataset=ring8 model.conditional=true",
        "model.conditional: needs class labels, and dataset ring8 has none",
    ),
    (
        "dataset=folder dataset.path={images} model.conditional=true",
        "model.conditional: needs class labels, and dataset folder",
    ),
    ("dataset=folder dataset.path={images} dataset.in_memory=false model.conditional=true", "model.conditional"),
    ("loss.aux_classifier=1", "loss.aux_classifier: ACGAN's class loss needs a conditional model"),
    ("dataset.path={mnist} model.conditional=true loss.aux_classifier=-1", "loss.aux_classifier"),
    ("dataset.path={mnist} model.conditional=true train.pack=2", "train.pack"),
    ("dataset.path={mnist} model.conditional=true aux=gon", "aux"),
    ("dataset.path={mnist} model.conditional=true eval.every=1 eval.sampling=drs", "eval.sampling"),
    ("model=mlp model.d_maxout=0", "model.d_maxout"),
    ("eval.sampling=best", "eval.sampling: unknown sampler 'best'"),
    ("eval.every=1 eval.sampling=drs train.pack=2", "eval.sampling: this run's D judges packs of 2"),
    ("train.bogus=1", "train.bogus"),
    ("model=vae", "model: unknown option 'vae'; known: dcgan, mlp, r3gan, resnet"),
    ("model.z_dim=0", "model.z_dim"),
    ("model.z_dim=oops", "model.z_dim"),
    ("model.g_channels=-8", "model.g_channels"),
    ("model=mlp model.g_hidden=[]", "model.g_hidden"),
    ("dataset=ring8", "model"),  # dcgan cannot make 2-D points
    ("dataset=ring8 model=mlp dataset.num_points=0", "dataset.num_points"),
    ("dataset=grid25 model=mlp dataset.std=-1", "dataset.std"),
    ("dataset=nope", "dataset: unknown option 'nope'"),
    ("dataset.path={missing}", "missing.npz"),
    ("dataset.path={text}", "notes.txt"),
    ("dataset.path={truncated}", "train-images-idx3-ubyte"),
    ("dataset.path={wrong_shape}", "wrong.npz"),
    ("dataset.path={empty}", "empty"),
    ("dataset.path={mnist} dataset.split=val", "dataset.split"),
    ("dataset=cifar10 dataset.path={empty}", "dataset.path"),
    ("strategy=tpu_pod", "strategy: unknown option 'tpu_pod'; did you mean tpu?"),
    ("resume={missing}", "resume"),
    ("resume={run} model=mlp", "model"),  # a resume cannot change the model
    ("resume={run} loss.gp_weight=1", "loss.gp_weight"),
    ("dataset.path={mnist}", "already holds a run"),  # a valid config may not reuse a run directory
    # stacked MNIST without features has pixel statistics, not modes
    ("dataset=stacked_mnist dataset.path={mnist} eval.features=none eval.select=modes eval.every=1", "eval.select"),
    ("dataset=folder dataset.path={images} eval.features=classifier eval.every=1", "eval.features"),
    ("dataset.subset=0", "dataset.subset"),
    ("dataset.subset=65", "dataset.subset: must be between 1 and 64"),
    ("dataset.in_memory=false", "dataset.in_memory"),  # only image folders are streamed
    # Every check passes but the last: the stream's cache is not written either.
    ("dataset=folder dataset.path={images} dataset.in_memory=false", "already holds a run"),
    ("model=resnet model.d_pooling=max", "model.d_pooling"),
    ("experiment=grid25 aux=null", "~aux"),
    ("+modle=mlp", "modle: no config defines this key; did you mean model?"),
]


@pytest.mark.parametrize("overrides, named", BAD_INPUTS, ids=[case[0].split(" ")[-1][:40] for case in BAD_INPUTS])
def test_bad_input_is_one_line_and_changes_nothing(
    tmp_path, bad_files, existing_run, overrides, named, capfd, monkeypatch
):
    """The real entry point in this process (one TensorFlow start-up for the whole table)."""
    before = snapshot(tmp_path)
    args = overrides.format(run=existing_run, **bad_files).split()
    if "dataset.path" not in overrides and "dataset=" not in overrides:
        args.append(f"dataset.path={bad_files['mnist']}")
    code, _, stderr = gantrain_in_process(
        f"hydra.run.dir={existing_run}", *args, cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    assert code != 0
    errors = [line for line in stderr.splitlines() if line.startswith("gantrain: error:")]
    assert len(errors) == 1 and named in errors[0], stderr
    assert "Traceback" not in stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "args",
    [["hydra.run.dir={text}"], ["hydra.run.dir={text}/run"], ["-m", "hydra.sweep.dir={text}", "train.seed=0,1"]],
    ids=["run_dir", "below_a_file", "sweep_dir"],
)
def test_a_run_directory_that_is_a_file_is_one_line(tmp_path, bad_files, args, capfd, monkeypatch):
    """Hydra would fail to make the directory with a traceback; the file stays as it was."""
    before = snapshot(tmp_path)
    args = [a.format(**bad_files) for a in args]
    code, _, stderr = gantrain_in_process(
        *args, f"dataset.path={bad_files['mnist']}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    key = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    errors = [line for line in stderr.splitlines() if line.startswith("gantrain: error:")]
    assert code != 0 and "Traceback" not in stderr, stderr
    assert errors == [f"gantrain: error: {key}: notes.txt is a file, not a directory"], stderr
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_bad_input_from_the_console_script(tmp_path, bad_files, existing_run):
    """One row of the table through the installed command, in its own process."""
    before = snapshot(tmp_path)
    result = gantrain(
        f"hydra.run.dir={existing_run}",
        "train.n_critic=0",
        f"dataset.path={bad_files['mnist']}",
        cwd=tmp_path,
        env_home=tmp_path.parent / "home",
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == "gantrain: error: train.n_critic: must be >= 1, got 0"
    assert snapshot(tmp_path) == before


FIXTURES = Path(__file__).parent / "fixtures"


def test_a_run_made_by_gantrain_0_1_0_resumes(tmp_path):
    """The fixture: a toy run with GON, EMA, R1, top-k and lr decay saved at step 2 by gantrain 0.1.0,
    and the state that version reached when resuming it to step 4 on its machine. This version
    restores every object of that checkpoint by its name and reaches the same state up to float
    round-off on any CPU; here, a resume stopped after step 3 and resumed again ends bit for bit
    where the resume in one go does (stopped, not a 3-step run: lr decay spans train.steps)."""
    import shutil

    from omegaconf import OmegaConf

    straight = tmp_path / "straight"
    shutil.copytree(FIXTURES / "run_0_1_0", straight)
    cfg = OmegaConf.load(straight / ".hydra" / "config.yaml")
    cfg.train.steps, cfg.train.checkpoint_every = 4, 1
    train(cfg, straight, resume=True)
    expected = {
        name.replace("|", "/"): value for name, value in np.load(FIXTURES / "run_0_1_0_resumed_to_4.npz").items()
    }
    reached = checkpoint_values(str(straight / "checkpoints" / "ckpt-4"))
    assert reached.keys() == expected.keys()
    for name in expected:
        assert_equal_up_to_round_off(reached[name], expected[name], name)

    stopped = tmp_path / "stopped"  # as a kill just after the checkpoint at step 3 leaves the run
    shutil.copytree(straight, stopped)
    for path in (stopped / "checkpoints").glob("ckpt-4.*"):
        path.unlink()
    tf.compat.v1.train.update_checkpoint_state(
        str(stopped / "checkpoints"), "ckpt-3", ["ckpt-2", "ckpt-3"], all_model_checkpoint_timestamps=[time.time()] * 2
    )
    train(cfg, stopped, resume=True)
    assert_same_state(str(straight / "checkpoints" / "ckpt-4"), str(stopped / "checkpoints" / "ckpt-4"))


def test_ctrl_c_checkpoints_the_current_step_and_exits_130(tmp_path, capfd, monkeypatch):
    """Ctrl-C (SIGINT) finishes the current step, writes a checkpoint at it and exits 130; the first
    signal says so. The real entry point in this process, interrupted once its first steps are logged."""
    import os
    import threading

    from gantrain.run.interrupts import GracefulStop

    run = tmp_path / "run"

    def press_ctrl_c() -> None:
        deadline = time.monotonic() + 120
        while len(metric_steps(run)) < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        # Only into the run's own handler: anywhere else SIGINT would interrupt the test session.
        if isinstance(getattr(signal.getsignal(signal.SIGINT), "__self__", None), GracefulStop):
            os.kill(os.getpid(), signal.SIGINT)

    presser = threading.Thread(target=press_ctrl_c, daemon=True)
    presser.start()
    # Enough steps that the run is still going when the signal comes, few enough to end if it never does.
    code, out, err = gantrain_in_process(
        *TOY,
        "train.steps=3000",
        "train.checkpoint_every=3000",
        "train.log_every=1",
        f"hydra.run.dir={run}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    presser.join()
    assert code == 130, out + err
    assert 3 <= latest_checkpoint_step(run) == metric_steps(run)[-1] < 3000  # a checkpoint at the current step
    assert "SIGINT: stopping after this step, with a checkpoint (press Ctrl-C again" in out + err
    assert f"Stopped by SIGINT at step {latest_checkpoint_step(run)} of 3000" in out


def test_rollbacks_compound_the_learning_rate_factor_until_max_rollbacks_run_out(
    tmp_path, make_cfg, caplog, built_gans
):
    """At a learning rate of 1e12, x0.5 and then x0.25 still diverge: each rollback lowers the rates
    the run has (not the checkpoint's) by rollback_lr_factor, and after max_rollbacks=2 the next
    divergence stops the run."""
    cfg = make_cfg(
        *TOY, *ABSURD_LR, "train.nan_policy=rollback", "train.rollback_lr_factor=0.5", "train.max_rollbacks=2"
    )
    with pytest.raises(
        GantrainError,
        match=r"^training diverged: non-finite .* at step \d+; the last good "
        r"checkpoint \(step 0\) is kept",
    ):
        train(cfg, tmp_path / "run")
    messages = [record.getMessage() for record in caplog.records]
    rolled = [message.split(": ", 1)[1] for message in messages if "rolled back" in message]
    assert rolled == [
        "rolled back to step 0 with learning rates x0.5 (rollback 1 of 2)",
        "rolled back to step 0 with learning rates x0.25 (rollback 2 of 2)",
    ]
    gan = built_gans[0]
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert float(optimizer.learning_rate) == pytest.approx(1e12 * 0.5**2, rel=1e-6)


@pytest.mark.parametrize("existing", [False, True], ids=["new_run_dir", "empty_run_dir"])
def test_a_full_disk_before_the_run_starts_is_one_line_and_leaves_nothing(
    tmp_path, full_disk, capfd, monkeypatch, existing
):
    run = tmp_path / "outputs" / "run"
    if existing:
        run.mkdir(parents=True)
    before = snapshot(tmp_path)
    full_disk.append(tmp_path)
    code, out, err = gantrain_in_process(
        *TOY, "train.steps=1", f"hydra.run.dir={run}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    errors = [line for line in err.splitlines() if line.startswith("gantrain: error:")]
    assert code == 2 and "Traceback" not in err, err
    assert errors == [
        f"gantrain: error: cannot write or read {run / '.hydra' / 'config.yaml'} (No space left on device)"
    ]
    assert snapshot(tmp_path) == before


def test_a_saved_config_that_cannot_be_read_is_one_line_naming_it(tmp_path, trained, capfd, monkeypatch):
    from gantrain.commands.evaluate import main as evaluate_main

    run = tmp_path / "run"
    trained(TWO_STEPS, run)
    config = run / ".hydra" / "config.yaml"
    config.write_text("train: {steps: [2\n")  # cut short
    before = snapshot(tmp_path)
    code, _, err = gantrain_in_process(
        f"resume={run}", "train.steps=4", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    errors = [line for line in err.splitlines() if line.startswith("gantrain: error:")]
    assert code == 2 and "Traceback" not in err, err
    assert len(errors) == 1 and errors[0].startswith(f"gantrain: error: {config} cannot be read ("), err
    with pytest.raises(SystemExit) as exit_:
        evaluate_main([f"run_dir={run}", "num_samples=5"])
    assert exit_.value.code == 2
    assert capfd.readouterr().err.strip().startswith(f"gantrain-eval: error: {config} cannot be read (")
    assert snapshot(tmp_path) == before


def test_a_checkpoint_that_cannot_be_written_leaves_no_temporary_folder(tmp_path, make_cfg, trained, monkeypatch):
    """The disk fills while TensorFlow merges the shards it wrote into ckpt-4_temp/."""
    from tensorflow.python.ops import gen_io_ops

    run = tmp_path / "run"
    trained(TWO_STEPS, run)

    def disk_full(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "ckpt-4.index: No space left on device")

    monkeypatch.setattr(gen_io_ops, "merge_v2_checkpoints", disk_full)
    with pytest.raises(GantrainError, match=r"^cannot write checkpoint 4 to .*No space left on device"):
        train(tiny_cfg(make_cfg, "train.steps=4"), run, resume=True)
    assert sorted(p.name for p in (run / "checkpoints").iterdir() if p.is_dir()) == []
    assert latest_checkpoint_step(run) == 2


@pytest.mark.parametrize(
    "args",
    [["hydra.run.dir={locked}/run"], ["-m", "hydra.sweep.dir={locked}/sweep", "train.seed=0,1"]],
    ids=["run_dir", "sweep_dir"],
)
def test_a_run_directory_in_a_read_only_folder_is_one_line(tmp_path, args, capfd, monkeypatch):
    """Root writes anywhere, so the folder is made read-only by the permission check itself."""
    locked = tmp_path / "locked"
    locked.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != locked and access(path, mode, **kw))
    before = snapshot(tmp_path)
    code, _, err = gantrain_in_process(
        *(a.format(locked=locked) for a in args),
        *TOY,
        "train.steps=1",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    key = "hydra.sweep.dir" if "-m" in args else "hydra.run.dir"
    errors = [line for line in err.splitlines() if line.startswith("gantrain: error:")]
    assert code == 2 and "Traceback" not in err, err
    assert errors == [f"gantrain: error: {key}: locked is not writable (read-only, or not yours)"], err
    assert snapshot(tmp_path) == before


def test_a_refused_run_leaves_no_log_file_handler_behind(tmp_path, capfd, monkeypatch):
    """Refused after Hydra made the run directory and set up its log file there: the directory is
    removed again, and the process (a notebook, this test session) can still log."""
    import logging

    run = tmp_path / "new" / "run"
    code, _, stderr = gantrain_in_process(
        *TOY, "train.g_lr=-1", f"hydra.run.dir={run}", cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    assert code == 2 and "train.g_lr" in stderr and not (tmp_path / "new").exists()
    assert not [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.FileHandler) and Path(h.baseFilename).is_relative_to(tmp_path)
    ]
    logging.getLogger("gantrain").warning("still logging")
