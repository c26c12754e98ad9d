"""Fault injection: break tiny real runs in the ways docs/guides/reliability.md promises to
survive, through the installed console scripts, and say for each fault whether the promise held.

Usage (from the repository root): ``python scripts/fault_injection.py [--jobs 2] [-k index] [--keep]``

Every fault runs ``gantrain``, ``gantrain-eval`` or ``gantrain-generate`` (the console scripts next
to this Python, as a user runs them) as subprocesses in a fresh temporary directory, against a
4-step toy run (model=mlp dataset=ring8 with tiny widths; copied with shutil.copytree before a fault
damages it), a folder of 8x8 images (dataset=folder) or a 64-image mnist.npz in the Keras layout.
It prints one line per fault: HELD or BROKEN, its name, the promise, what happened; then
"N faults, M held". The exit code is 1 when any promise is broken. ``--jobs`` faults run at once
(each is independent), ``-k`` runs those whose name contains the word, ``--keep`` keeps the
temporary directory and prints its path.

How the faults are made:
- damaged run files (the ``checkpoints/checkpoint`` index, a checkpoint's data or index file, the
  saved config, a dataset file, an image): deleted, cut short, zeroed or overwritten on disk;
- kill -9, SIGTERM, Ctrl-C: the real signals, sent to the training process once ``metrics.jsonl``
  shows progress (polled up to a deadline, not a fixed sleep);
- divergence: learning rates of 1e12;
- a run directory another process writes: a second process takes the same flock on ``<run>/.lock``;
- a full disk, a read error, a read-only folder, a checkpoint the disk fills while TensorFlow
  writes it: the entry point runs in ``python -c`` (:data:`PATCHED`) with Python's opener patched
  to create files under a folder and fail every write to them with ENOSPC (as a full disk does),
  or to fail opening one file with EIO; with ``os.access`` reporting the folder unwritable (it is
  also chmod 555, which is enough for a user other than root); with TensorFlow's checkpoint merge
  raising ENOSPC. A real full file system cannot be made without privileges to mount one;
- bad input: files in the official layouts with one thing wrong, and overrides that name code to call.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image

BIN = Path(sys.executable).parent
MODULES = {
    "gantrain": "gantrain.commands.train",
    "gantrain-eval": "gantrain.commands.evaluate",
    "gantrain-generate": "gantrain.commands.generate",
}
# A toy run that trains a step in milliseconds: the widths of tests/conftest.py's TINY.
TOY = [
    "model=mlp",
    "model.z_dim=4",
    "model.g_hidden=[16,16]",
    "model.d_hidden=[16,16]",
    "dataset=ring8",
    "dataset.num_points=200",
    "train.batch_size=8",
    "train.n_critic=1",
    "train.log_every=1",
    "train.sample_every=1000",
]
TINY_DCGAN = [
    "model=dcgan",
    "model.z_dim=4",
    "model.g_channels=4",
    "model.d_channels=4",
    "model.kernel_size=3",
    "train.batch_size=2",
    "train.n_critic=1",
    "train.steps=1",
]
BASE_STEPS = 4  # the shared run's length; it keeps every checkpoint, 0 to 4
DIVERGING = ["train.g_lr=1e12", "train.d_lr=1e12"]  # with loss=nsgan, non-finite within a few steps

# The entry point named by argv[1] (a JSON spec), run with the OS faults the spec asks for.
PATCHED = r'''
import builtins, errno, importlib, io, json, os, sys
from pathlib import Path

spec = json.loads(sys.argv[1])
real_open, real_access = io.open, os.access


class FullFile:
    """A file on a full disk: created, as the kernel creates it, but every write fails."""

    def __init__(self, file):
        self._file = file

    def write(self, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def __getattr__(self, name):
        return getattr(self._file, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._file.close()


def opener(file, mode="r", *args, **kwargs):
    name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.path.abspath(file)
    if name in spec.get("eio", []):
        raise OSError(errno.EIO, os.strerror(errno.EIO), name)
    opened = real_open(file, mode, *args, **kwargs)
    if any(c in mode for c in "wax+") and any(Path(name).is_relative_to(f) for f in spec.get("full", [])):
        return FullFile(opened)
    return opened


def access(path, mode, **kwargs):
    if mode & os.W_OK and os.path.abspath(path) in spec.get("read_only", []):
        return False
    return real_access(path, mode, **kwargs)


builtins.open = io.open = opener
os.access = access
if spec.get("checkpoint_merge_fails"):
    import tensorflow as tf
    from tensorflow.python.ops import gen_io_ops

    def merge_fails(*args, **kwargs):
        raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")

    gen_io_ops.merge_v2_checkpoints = merge_fails
sys.argv = [spec["program"], *sys.argv[2:]]
importlib.import_module(spec["module"]).main()
'''

# A process holding a run directory's lock as gantrain takes it: flock on <run>/.lock, its PID inside.
HOLDER = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
os.write(fd, f"{os.getpid()}\\n".encode())
print("held", flush=True)
time.sleep(600)
"""


# ---------------------------------------------------------------------------------------------
# Running the console scripts
# ---------------------------------------------------------------------------------------------


@dataclass
class Result:
    code: int
    out: str
    err: str

    def errors(self, program: str) -> list[str]:
        return [line for line in self.err.splitlines() if line.startswith(f"{program}: error:")]

    def said(self, text: str) -> bool:
        return text in self.out or text in self.err


@dataclass
class Place:
    """Where the faults happen: a temporary folder (the working directory of every command) and
    the shared toy run in it, which no fault changes."""

    root: Path
    base: Path = field(init=False)

    def __post_init__(self):
        self.base = self.root / "base"

    def copy(self, name: str) -> Path:
        return Path(shutil.copytree(self.base, self.root / name))

    def folder(self, name: str) -> Path:
        path = self.root / name
        path.mkdir()
        return path


def command(program: str) -> list[str]:
    """The installed console script next to this Python, as tests/conftest.py finds it."""
    exe = shutil.which(program, path=str(BIN))
    return [exe] if exe else [sys.executable, "-m", MODULES[program]]


def environment(root: Path, **extra: str) -> dict[str, str]:
    """The user's environment with a Keras cache of this script's own: no cached data or model is used."""
    env = {k: v for k, v in os.environ.items() if k not in ("GANTRAIN_DATA_DIR", "HYDRA_FULL_ERROR")}
    return {**env, "KERAS_HOME": str(root / "keras_home"), **extra}


def call(
    place: Place, program: str, *args: str, patch: dict | None = None, env: dict | None = None, timeout: float = 300
) -> Result:
    """``program args`` in the place's folder; with ``patch`` (see :data:`PATCHED`) through ``python -c``."""
    argv = (
        command(program)
        if patch is None
        else [sys.executable, "-c", PATCHED, json.dumps({"program": program, "module": MODULES[program], **patch})]
    )
    try:
        done = subprocess.run(
            [*argv, *args],
            cwd=place.root,
            env=environment(place.root, **(env or {})),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired as err:
        return Result(-1, err.stdout or "", f"timed out after {timeout:.0f} s")
    return Result(done.returncode, done.stdout, done.stderr)


def gantrain(place: Place, *args: str, **kw) -> Result:
    return call(place, "gantrain", *args, **kw)


def toy(steps: int, every: int = 1, loss: str = "wgan_gp") -> list[str]:
    """The toy run's overrides for ``steps`` steps with a checkpoint ``every`` steps."""
    return [*TOY, f"loss={loss}", f"train.steps={steps}", f"train.checkpoint_every={every}"]


def train_base(place: Place) -> None:
    result = gantrain(place, *toy(BASE_STEPS), "train.keep_checkpoints=5", f"hydra.run.dir={place.base}")
    if result.code != 0:
        sys.exit(f"the shared toy run failed (exit {result.code}):\n{result.err[-2000:]}")


# ---------------------------------------------------------------------------------------------
# Reading what happened
# ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    happened: str
    broken: list[str]  # the parts of the promise that did not hold


def judge(happened: str, **checks: bool) -> Outcome:
    """What happened, and which of the named checks failed (``exit_0=result.code == 0``, ...)."""
    return Outcome(happened, [name.replace("_", " ") for name, ok in checks.items() if not ok])


def snapshot(folder: Path, leave_out: tuple[str, ...] = ()) -> dict[str, bytes]:
    """Every path under ``folder`` with its bytes: equal snapshots mean nothing was touched."""
    return {
        str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>"
        for p in folder.rglob("*")
        if p.name not in leave_out
    }


def metric_steps(run: Path) -> list[int]:
    """The steps of metrics.jsonl's complete lines (a line a kill cut short is not one)."""
    path = run / "metrics.jsonl"
    lines = path.read_text().splitlines(keepends=True) if path.exists() else []
    return [json.loads(line)["step"] for line in lines if line.endswith("\n")]


def checkpoint_steps(run: Path) -> list[int]:
    return sorted(int(p.name[5:-6]) for p in (run / "checkpoints").glob("ckpt-*.index"))


def steps_text(steps: list[int]) -> str:
    return (
        "none"
        if not steps
        else f"{steps[0]}..{steps[-1]}"
        if steps == list(range(steps[0], steps[-1] + 1))
        else ",".join(map(str, steps))
    )


def resumed_at(result: Result) -> int | None:
    found = re.search(r"resumed .* at step (\d+)", result.out + result.err)
    return int(found[1]) if found else None


def last_json(result: Result) -> dict:
    """The JSON line gantrain-eval and gantrain-generate print on stdout ({} if there is none)."""
    lines = [line for line in result.out.splitlines() if line.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def shown(result: Result, program: str = "gantrain") -> str:
    """The exit code and the error line (or the last line of stderr) of a command, for the report."""
    if result.code == 0:
        return "exit 0"
    errors = result.errors(program)
    tail = errors[0] if errors else (result.err.strip().splitlines() or [""])[-1]
    return f"exit {result.code}" + (f": {tail[:160]}" if tail else "")


def refused(result: Result, naming: str, unchanged: bool, program: str = "gantrain") -> Outcome:
    """The promise for bad input: exit 2, one error line naming ``naming``, no traceback, nothing changed."""
    errors = result.errors(program)
    return judge(
        shown(result, program),
        exit_2=result.code == 2,
        one_error_line=len(errors) == 1,
        names_it=any(naming in e for e in errors),
        no_traceback="Traceback" not in result.err,
        nothing_changed=unchanged,
    )


# ---------------------------------------------------------------------------------------------
# Checkpoints and the saved config
# ---------------------------------------------------------------------------------------------


def cut(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def data_file(run_dir: Path, step: int) -> Path:
    return next((run_dir / "checkpoints").glob(f"ckpt-{step}.data-*"))


INDEX_DAMAGE = {
    "deleted": lambda index: index.unlink(),
    "garbled": lambda index: index.write_text('model_checkpoint_path: "ckpt-4\nnot a proto {{\n'),
    "not_utf8": lambda index: index.write_bytes(b"\xff\xfe\x00model_checkpoint_path\x81\n"),
}
NEWEST_DAMAGE = {
    "data_zeroed": lambda run_dir: data_file(run_dir, BASE_STEPS).write_bytes(b"\0" * 16),
    "data_deleted": lambda run_dir: data_file(run_dir, BASE_STEPS).unlink(),
    "index_file_cut": lambda run_dir: cut(run_dir / "checkpoints" / f"ckpt-{BASE_STEPS}.index"),
}


def resume_one_more(place: Place, run_dir: Path, expected_from: int, warns: str = "") -> Outcome:
    """Resume ``run_dir`` to one step past the shared run's end: it must continue from
    ``expected_from`` (warning with ``warns`` in the line), save the last step and log each step once."""
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 1}")
    steps = metric_steps(run_dir)
    return judge(
        f"{shown(result)}, resumed at step {resumed_at(result)}, metrics.jsonl steps {steps_text(steps)}",
        exit_0=result.code == 0,
        resumed_there=resumed_at(result) == expected_from,
        warned=not warns
        or any("warning" in line.lower() and warns in line for line in (result.out + result.err).splitlines()),
        final_checkpoint=BASE_STEPS + 1 in checkpoint_steps(run_dir),
        one_line_per_step=steps == list(range(1, BASE_STEPS + 2)),
    )


def index_damaged(how: str) -> Callable[[Place], Outcome]:
    def inject(place: Place) -> Outcome:
        run_dir = place.copy(f"index_{how}")
        INDEX_DAMAGE[how](run_dir / "checkpoints" / "checkpoint")
        return resume_one_more(place, run_dir, BASE_STEPS)

    return inject


def newest_damaged(how: str) -> Callable[[Place], Outcome]:
    def inject(place: Place) -> Outcome:
        run_dir = place.copy(f"newest_{how}")
        NEWEST_DAMAGE[how](run_dir)
        return resume_one_more(place, run_dir, BASE_STEPS - 1, warns=f"ckpt-{BASE_STEPS}")

    return inject


def eval_and_generate_agree(place: Place) -> Outcome:
    run_dir = place.copy("agree")
    NEWEST_DAMAGE["data_zeroed"](run_dir)
    evaluated = call(place, "gantrain-eval", f"run_dir={run_dir}", "num_samples=50")
    generated = call(
        place,
        "gantrain-generate",
        f"run_dir={run_dir}",
        f"out={place.root / 'agree_out'}",
        "format=npz",
        "num_samples=8",
    )
    steps = (last_json(evaluated).get("step"), last_json(generated).get("step"))
    return judge(
        f"gantrain-eval {shown(evaluated, 'gantrain-eval')} at step {steps[0]}, "
        f"gantrain-generate {shown(generated, 'gantrain-generate')} at step {steps[1]}",
        both_exit_0=evaluated.code == generated.code == 0,
        both_take_the_previous=steps == (3, 3),
    )


def all_checkpoints_unreadable(place: Place) -> Outcome:
    run_dir = place.copy("all_unreadable")
    (run_dir / "checkpoints" / "checkpoint").unlink()
    for data in (run_dir / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"\0" * 16)
    before = snapshot(run_dir)
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 2}")
    return refused(result, "can be read", snapshot(run_dir) == before)


def checkpoint_write_fails(place: Place) -> Outcome:
    """The disk fills while TensorFlow merges the shards of checkpoint 5 into ckpt-5_temp/."""
    run_dir = place.copy("checkpoint_write_fails")
    kept = snapshot(run_dir / "checkpoints", leave_out=("checkpoint",))
    result = gantrain(
        place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 2}", patch={"checkpoint_merge_fails": True}
    )
    left = sorted(p.name for p in (run_dir / "checkpoints").glob(f"ckpt-{BASE_STEPS + 1}*"))
    outcome = refused(
        result,
        f"cannot write checkpoint {BASE_STEPS + 1}",
        snapshot(run_dir / "checkpoints", leave_out=("checkpoint",)) == kept,
    )
    outcome.happened += f"; left of checkpoint {BASE_STEPS + 1}: {', '.join(left) or 'nothing'}"
    return outcome


def saved_config_cut(place: Place) -> Outcome:
    """The file ends in the middle of a key, as a copy cut short leaves it."""
    run_dir = place.copy("config_cut")
    config = run_dir / ".hydra" / "config.yaml"
    text = config.read_text()
    config.write_text(text[: text.index("d_hidden") + 5])
    before = snapshot(run_dir)
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 1}")
    return refused(result, ".hydra/config.yaml cannot be read", snapshot(run_dir) == before)


def saved_config_deleted(place: Place) -> Outcome:
    run_dir = place.copy("config_deleted")
    (run_dir / ".hydra" / "config.yaml").unlink()
    before = snapshot(run_dir)
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 1}")
    return refused(result, "resume: ", snapshot(run_dir) == before)


def changed_config_on_resume(place: Place) -> Outcome:
    run_dir = place.copy("changed_config")
    before = snapshot(run_dir)
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 1}", "model.z_dim=8")
    return refused(result, "model.z_dim: cannot change when resuming", snapshot(run_dir) == before)


def environment_value_saved(place: Place) -> Outcome:
    """A learning rate from the environment; the resume runs where the variable is not set."""
    run_dir = place.root / "environment_value"
    first = gantrain(
        place,
        *toy(2),
        "train.g_lr=${oc.env:FAULT_INJECTION_LR}",
        f"hydra.run.dir={run_dir}",
        env={"FAULT_INJECTION_LR": "0.0007"},
    )
    resumed = gantrain(place, f"resume={run_dir}", "train.steps=3")
    saved = (run_dir / ".hydra" / "config.yaml").read_text() if first.code == 0 else ""
    value = re.search(r"\bg_lr: (\S+)", saved)
    return judge(
        f"run {shown(first)}, saved g_lr {value[1] if value else None}, resume without the variable {shown(resumed)}",
        run_exit_0=first.code == 0,
        saved_resolved="${" not in saved and bool(value) and float(value[1].strip("'")) == 0.0007,
        resume_exit_0=resumed.code == 0,
    )


def metrics_line_malformed(place: Place) -> Outcome:
    run_dir = place.copy("metrics_malformed")
    lines = (run_dir / "metrics.jsonl").read_text().splitlines(keepends=True)
    (run_dir / "metrics.jsonl").write_text("".join([lines[0], '{"step": 2, "d_lo\n', *lines[1:]]))
    return resume_one_more(place, run_dir, BASE_STEPS, warns="metrics.jsonl: line 2 is not a JSON object")


# ---------------------------------------------------------------------------------------------
# Other processes and signals
# ---------------------------------------------------------------------------------------------


def hold_lock(lock: Path) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(lock)], stdout=subprocess.PIPE, text=True)
    holder.stdout.readline()  # "held"
    return holder


def run_in_use(place: Place) -> Outcome:
    run_dir = place.copy("in_use")
    before = snapshot(run_dir, leave_out=(".lock",))
    holder = hold_lock(run_dir / ".lock")
    try:
        result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 1}")
    finally:
        holder.kill()
        holder.wait()
    return refused(result, f"(PID {holder.pid})", snapshot(run_dir, leave_out=(".lock",)) == before)


def lock_holder_killed(place: Place) -> Outcome:
    run_dir = place.copy("holder_killed")
    holder = hold_lock(run_dir / ".lock")
    holder.kill()
    holder.wait()
    outcome = resume_one_more(place, run_dir, BASE_STEPS)
    if (run_dir / ".lock").exists():
        outcome.broken.append("no lock left")
    return outcome


def start_training(place: Place, run_dir: Path, steps: int, every: int) -> subprocess.Popen:
    return subprocess.Popen(
        [*command("gantrain"), *toy(steps, every), f"hydra.run.dir={run_dir}"],
        cwd=place.root,
        env=environment(place.root),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_steps(run_dir: Path, process: subprocess.Popen, count: int, deadline: float = 180) -> bool:
    """Whether ``count`` steps were logged while the process ran, polled until ``deadline`` seconds."""
    end = time.monotonic() + deadline
    while time.monotonic() < end and process.poll() is None:
        if len(metric_steps(run_dir)) >= count:
            return True
        time.sleep(0.02)
    return False


KILL_STEPS, KILL_EVERY = 60, 5


def kill_9(place: Place) -> Outcome:
    run_dir = place.root / "kill_9"
    process = start_training(place, run_dir, KILL_STEPS, KILL_EVERY)
    training = wait_for_steps(run_dir, process, 15)
    process.kill()
    process.communicate()
    done, saved = max(metric_steps(run_dir), default=0), max(checkpoint_steps(run_dir), default=0)
    result = gantrain(place, f"resume={run_dir}")
    steps = metric_steps(run_dir)
    return judge(
        f"killed at step {done} with checkpoint {saved}; resume {shown(result)} at step {resumed_at(result)}, "
        f"metrics.jsonl steps {steps_text(steps)}",
        killed_while_training=training and process.returncode == -signal.SIGKILL,
        lost_at_most_checkpoint_every=0 <= done - saved <= KILL_EVERY,
        resume_exit_0=result.code == 0,
        final_checkpoint=KILL_STEPS in checkpoint_steps(run_dir),
        one_line_per_step=steps == list(range(1, KILL_STEPS + 1)),
    )


def stopped_by(sig: signal.Signals, code: int) -> Callable[[Place], Outcome]:
    def inject(place: Place) -> Outcome:
        run_dir = place.root / f"stopped_by_{sig.name}"
        process = start_training(place, run_dir, 100_000, 100_000)
        training = wait_for_steps(run_dir, process, 5)
        process.send_signal(sig)
        sent = time.monotonic()
        try:
            process.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        took = time.monotonic() - sent
        done, saved = metric_steps(run_dir), checkpoint_steps(run_dir)
        return judge(
            f"exit {process.returncode} {took:.1f} s after {sig.name}, at step {max(done, default=0)}, "
            f"checkpoints at steps {steps_text(saved)}",
            was_training=training,
            **{f"exit_{code}": process.returncode == code},
            within_30_s=took < 30,
            checkpoint_at_the_last_step=bool(done and saved) and saved[-1] == done[-1] > 0,
        )

    return inject


def diverges(place: Place) -> Outcome:
    run_dir, out = place.root / "diverges", place.root / "diverges_samples"
    result = gantrain(place, *toy(20, loss="nsgan"), *DIVERGING, f"hydra.run.dir={run_dir}")
    kept = re.search(r"the last good checkpoint \(step (\d+)\) is kept", result.err)
    generated = call(place, "gantrain-generate", f"run_dir={run_dir}", f"out={out}", "format=npz", "num_samples=64")
    finite = generated.code == 0 and bool(np.isfinite(np.load(out / "samples.npz")["x"]).all())
    step = last_json(generated).get("step")
    return judge(
        f"{shown(result)}; gantrain-generate {shown(generated, 'gantrain-generate')} from step {step}, "
        f"samples {'finite' if finite else 'not finite'}",
        stopped_non_zero=result.code not in (0, -1),
        one_error_line=len(result.errors("gantrain")) == 1,
        names_the_kept_checkpoint=bool(kept),
        samples_of_it_finite=finite and kept is not None and step == int(kept[1]),
    )


def rolls_back(place: Place) -> Outcome:
    run_dir = place.root / "rolls_back"
    # Back to step 0: the checkpoints after it hold finite weights that already give non-finite losses.
    result = gantrain(
        place,
        *toy(20, every=5, loss="nsgan"),
        *DIVERGING,
        "train.nan_policy=rollback",
        "train.rollback_lr_factor=1e-14",
        f"hydra.run.dir={run_dir}",
    )
    rolled = re.search(r"rolled back to step \d+[^\n]*", result.out + result.err)
    records = (
        [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
        if (run_dir / "metrics.jsonl").exists()
        else []
    )
    finite = all(math.isfinite(r["d_loss"]) and math.isfinite(r["g_loss"]) for r in records)
    return judge(
        f"{shown(result)}, {rolled[0] if rolled else 'no rollback said'}, metrics.jsonl steps "
        f"{steps_text([r['step'] for r in records])}, {'all' if finite else 'not all'} finite",
        exit_0=result.code == 0,
        rolled_back=bool(rolled),
        final_checkpoint=20 in checkpoint_steps(run_dir),
        one_finite_line_per_step=finite and [r["step"] for r in records] == list(range(1, 21)),
    )


# ---------------------------------------------------------------------------------------------
# The file system
# ---------------------------------------------------------------------------------------------


def full_disk_new_run(place: Place) -> Outcome:
    folder = place.folder("full_new_run")
    run_dir = folder / "outputs" / "run"
    result = gantrain(place, *toy(1), f"hydra.run.dir={run_dir}", patch={"full": [str(folder)]})
    return refused(result, f"{run_dir / '.hydra' / 'config.yaml'} (No space left on device)", snapshot(folder) == {})


def full_disk_resume(place: Place) -> Outcome:
    run_dir = place.copy("full_resume")
    before = snapshot(run_dir)
    result = gantrain(place, f"resume={run_dir}", f"train.steps={BASE_STEPS + 2}", patch={"full": [str(run_dir)]})
    after = snapshot(run_dir, leave_out=(".lock",))
    changed = sorted(name for name in after if after[name] != before.get(name) and not name.startswith("checkpoints"))
    outcome = refused(
        result,
        "(No space left on device)",
        all(after.get(name) == data for name, data in before.items() if name.startswith("checkpoints/ckpt")),
    )
    leftovers = [name for name in after if ".tmp" in Path(name).name or "_temp" in name]
    outcome.happened += (
        f"; changed outside checkpoints/: {', '.join(changed) or 'nothing'}; "
        f"temporary files left: {', '.join(leftovers) or 'none'}"
    )
    if leftovers:
        outcome.broken.append("no temporary file left")
    return outcome


def full_disk_generate(place: Place) -> Outcome:
    folder = place.folder("full_generate")
    out = folder / "deep" / "out"
    result = call(
        place,
        "gantrain-generate",
        f"run_dir={place.base}",
        f"out={out}",
        "format=npz",
        "num_samples=8",
        patch={"full": [str(folder)]},
    )
    return refused(result, f"{out} (No space left on device)", snapshot(folder) == {}, "gantrain-generate")


def full_disk_export(place: Place) -> Outcome:
    run_dir, folder = place.copy("full_export"), place.folder("full_export_out")
    before = snapshot(run_dir)
    result = call(
        place,
        "gantrain-eval",
        f"run_dir={run_dir}",
        "num_samples=20",
        f"export={folder / 'samples.npz'}",
        patch={"full": [str(folder)]},
    )
    return refused(
        result,
        "samples.npz (No space left on device)",
        snapshot(folder) == {} and snapshot(run_dir) == before,
        "gantrain-eval",
    )


def run_dir_below_a_file(place: Place) -> Outcome:
    notes = place.root / "notes_below.txt"
    notes.write_text("the user's notes")
    result = gantrain(place, *toy(1), f"hydra.run.dir={notes / 'run'}")
    return refused(result, "hydra.run.dir: notes_below.txt is a file", notes.read_text() == "the user's notes")


def run_dir_is_a_file(place: Place) -> Outcome:
    notes = place.root / "notes_run.txt"
    notes.write_text("the user's notes")
    result = gantrain(place, *toy(1), f"hydra.run.dir={notes}")
    return refused(result, "hydra.run.dir: notes_run.txt is a file", notes.read_text() == "the user's notes")


def read_only_folder(place: Place) -> Outcome:
    locked = place.folder("read_only")
    locked.chmod(0o555)
    try:
        result = gantrain(place, *toy(1), f"hydra.run.dir={locked / 'run'}", patch={"read_only": [str(locked)]})
    finally:
        locked.chmod(0o755)
    return refused(result, "hydra.run.dir: read_only is not writable", snapshot(locked) == {})


def new_run_into_a_run(place: Place) -> Outcome:
    run_dir = place.copy("new_into_run")
    before = snapshot(run_dir)
    result = gantrain(place, *toy(1), f"hydra.run.dir={run_dir}")
    return refused(result, "already holds a run", snapshot(run_dir) == before)


def generate_into_a_full_folder(place: Place) -> Outcome:
    out = place.folder("generate_not_empty")
    (out / "mine.png").write_bytes(b"the user's picture")
    result = call(place, "gantrain-generate", f"run_dir={place.base}", f"out={out}", "format=npz", "num_samples=8")
    return refused(result, "overwrite=true", snapshot(out) == {"mine.png": b"the user's picture"}, "gantrain-generate")


def generate_below_a_file(place: Place) -> Outcome:
    notes = place.root / "notes_generate.txt"
    notes.write_text("the user's notes")
    result = call(place, "gantrain-generate", f"run_dir={place.base}", f"out={notes / 'out'}", "format=npz")
    return refused(result, "notes_generate.txt", notes.read_text() == "the user's notes", "gantrain-generate")


def export_exists(place: Place) -> Outcome:
    run_dir, export = place.copy("export_exists"), place.root / "export_exists.npz"
    export.write_bytes(b"the user's file")
    kept = call(place, "gantrain-eval", f"run_dir={run_dir}", "num_samples=20", f"export={export}")
    untouched = export.read_bytes() == b"the user's file"
    replaced = call(
        place, "gantrain-eval", f"run_dir={run_dir}", "num_samples=20", f"export={export}", "overwrite=true"
    )
    written = replaced.code == 0 and np.load(export)["x"].shape == (20, 2)
    outcome = refused(kept, "add overwrite=true", untouched, "gantrain-eval")
    outcome.happened += f"; with overwrite=true {shown(replaced, 'gantrain-eval')}"
    return judge(outcome.happened, refused=not outcome.broken, overwrite_replaces_it=written)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

SIDE = (8, 8)


def dark_and_light(dtype: str, low: float, high: float, form: str) -> list[tuple[Image.Image, str]]:
    return [(Image.fromarray(np.full(SIDE, value, dtype)), form) for value in (low, high)]


def full_range_images(place: Place) -> Outcome:
    """The darkest and the brightest image of three pixel depths: all read, the real pixels' mean
    and spread are those of black and white in equal parts (127.5 and 127.5)."""
    folder, run_dir = place.folder("deep_images"), place.root / "deep_images_run"
    images = [
        *dark_and_light("uint16", 0, 65535, "PNG"),
        *dark_and_light("int32", -(2**31), 2**31 - 1, "TIFF"),
        *dark_and_light("float32", 0.0, 1.0, "TIFF"),
    ]
    for i, (image, form) in enumerate(images):
        image.save(folder / f"{i}.png", format=form)  # found by its name, decoded by its content
    trained = gantrain(
        place,
        *TINY_DCGAN,
        "dataset=folder",
        f"dataset.path={folder}",
        "dataset.resolution=8",
        "dataset.channels=1",
        f"hydra.run.dir={run_dir}",
    )
    evaluated = call(place, "gantrain-eval", f"run_dir={run_dir}", "features=none", "num_samples=8")
    real = last_json(evaluated)
    mean, std = real.get("real_pixel_mean", math.nan), real.get("real_pixel_std", math.nan)
    return judge(
        f"train {shown(trained)}, gantrain-eval {shown(evaluated, 'gantrain-eval')}: real pixels mean "
        f"{mean:.1f}, std {std:.1f}",
        both_exit_0=trained.code == evaluated.code == 0,
        full_range=abs(mean - 127.5) < 1 and abs(std - 127.5) < 1,
    )


def light_png(path: Path) -> None:
    Image.fromarray(np.full((*SIDE, 3), 200, np.uint8)).save(path)


BAD_IMAGES = {
    "truncated.png": lambda path: path.write_bytes((path.parent / "good_0.png").read_bytes()[:40]),
    "empty.png": lambda path: path.write_bytes(b""),
    "text.png": lambda path: path.write_text("not an image"),
    "folder.png": lambda path: path.mkdir(),
    "dangling.png": lambda path: path.symlink_to(path.parent / "gone.png"),
}


def unreadable_images_skipped(place: Place) -> Outcome:
    folder = place.folder("bad_images")
    for i in range(2):
        light_png(folder / f"good_{i}.png")
    for name, make in BAD_IMAGES.items():
        make(folder / name)
    result = gantrain(
        place,
        *TINY_DCGAN,
        "dataset=folder",
        f"dataset.path={folder}",
        "dataset.resolution=8",
        f"hydra.run.dir={place.root / 'bad_images_run'}",
    )
    warned = [name for name in BAD_IMAGES if result.said(f"{name}, which cannot be read")]
    return judge(
        f"{shown(result)}, warnings name {', '.join(warned) or 'none'}",
        exit_0=result.code == 0,
        each_named=len(warned) == len(BAD_IMAGES),
        two_images_used=result.said("2 images under"),
    )


def no_readable_image(place: Place) -> Outcome:
    folder = place.folder("no_readable_image")
    (folder / "text.png").write_text("not an image")
    (folder / "empty.png").write_bytes(b"")
    before = snapshot(folder)
    run_dir = place.root / "no_readable_image_run"
    result = gantrain(
        place,
        *TINY_DCGAN,
        "dataset=folder",
        f"dataset.path={folder}",
        "dataset.resolution=8",
        f"hydra.run.dir={run_dir}",
    )
    return refused(result, "dataset.path: none of the 2 images", snapshot(folder) == before and not run_dir.exists())


def mnist_npz(path: Path, labels: np.ndarray) -> None:
    """A 64-image MNIST in the Keras mnist.npz layout with these training labels."""
    pixels = np.random.default_rng(0).integers(0, 256, size=(80, 28, 28), dtype=np.uint8)
    np.savez(path, x_train=pixels[:64], y_train=labels, x_test=pixels[64:], y_test=labels[:16])


def digits() -> np.ndarray:
    return np.arange(64, dtype=np.uint8) % 10


def mnist_refused(name: str, labels: np.ndarray | None, naming: str, damage=None) -> Callable[[Place], Outcome]:
    def inject(place: Place) -> Outcome:
        folder = place.folder(f"mnist_{name}")
        path = folder / "mnist.npz"
        mnist_npz(path, digits() if labels is None else labels)
        if damage:
            damage(path)
        before = snapshot(folder)
        run_dir = place.root / f"mnist_{name}_run"
        result = gantrain(place, *TINY_DCGAN, "dataset=mnist", f"dataset.path={path}", f"hydra.run.dir={run_dir}")
        return refused(result, naming, snapshot(folder) == before and not run_dir.exists())

    return inject


def label_200() -> np.ndarray:
    labels = digits()
    labels[5] = 200
    return labels


# ---------------------------------------------------------------------------------------------
# Overrides, sweeps, the hints
# ---------------------------------------------------------------------------------------------


def override_calls_open(node: str, *sweep: str) -> Callable[[Place], Outcome]:
    """Overrides that make ``node`` a call of ``open(victim, "w")``, which would empty the user's file."""

    def inject(place: Place) -> Outcome:
        folder = place.folder(f"calls_open_{node.split('.')[1]}")
        victim = folder / "precious.txt"
        victim.write_text("the user's file")
        parent = node.rsplit(".", 1)[0]
        result = gantrain(
            place,
            *sweep,
            *toy(1),
            f"{node}=builtins.open",
            f"+{parent.lstrip('+')}.file={victim}",
            f"+{parent.lstrip('+')}.mode=w",
            f"hydra.run.dir={folder / 'run'}",
            f"hydra.sweep.dir={folder / 'sweep'}",
        )
        return refused(
            result,
            f"{node.lstrip('+')}: builtins.open is not",
            snapshot(folder) == {"precious.txt": b"the user's file"},
        )

    return inject


def sweep_result_unreadable(place: Place) -> Outcome:
    """Reading job 0's result.json fails with EIO (a bad sector); job 1 completes."""
    import csv

    sweep = place.root / "sweep"
    result = gantrain(
        place,
        "-m",
        *toy(1),
        "train.seed=0,1",
        f"hydra.sweep.dir={sweep}",
        patch={"eio": [str(sweep / "0" / "result.json")]},
    )
    summary = sweep / "summary.csv"
    rows = [(row["job"], row["status"]) for row in csv.DictReader(open(summary))] if summary.exists() else []
    named = "gantrain: warning: job 0: cannot read" in result.err
    return judge(
        f"{shown(result)}, summary.csv rows {rows}, {'named' if named else 'not named'} on the console",
        unreadable_row=rows == [("0", "unreadable"), ("1", "completed")],
        named_on_the_console=named,
    )


def hints_quote_the_path(place: Place) -> Outcome:
    """A run directory holding a quote, spaces and shell and Hydra characters: the "Next:" commands,
    pasted into a shell, evaluate and resume it."""
    run_dir = place.root / "runs" / "it's a $HOME & (run)"
    trained = gantrain(place, *toy(2), f'hydra.run.dir="{run_dir}"')
    hints = [shlex.split(line, comments=True) for line in trained.out.partition("Next:\n")[2].splitlines()]
    pasted = {words[0]: words for words in hints if words}
    evaluated = call(place, *pasted.get("gantrain-eval", ["gantrain-eval"]), "num_samples=20")
    resumed = call(place, *pasted.get("gantrain", ["gantrain"]))
    return judge(
        f"train {shown(trained)}; the pasted gantrain-eval {shown(evaluated, 'gantrain-eval')}, "
        f"gantrain resume {shown(resumed)}",
        trained=trained.code == 0,
        eval_hint_works=evaluated.code == 0 and last_json(evaluated).get("step") == 2,
        resume_hint_works=resumed.code == 0 and 4 in checkpoint_steps(run_dir),
    )


# ---------------------------------------------------------------------------------------------
# The faults, and running them
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Fault:
    name: str
    promise: str
    inject: Callable[[Place], Outcome]  # damages a copy or a new folder, runs the commands, says what happened


FAULTS = [
    Fault("index_deleted", "resume continues from the newest checkpoint file", index_damaged("deleted")),
    Fault("index_garbled", "resume continues from the newest checkpoint file", index_damaged("garbled")),
    Fault("index_not_utf8", "resume continues from the newest checkpoint file", index_damaged("not_utf8")),
    Fault(
        "newest_data_zeroed", "resume warns and continues from the previous checkpoint", newest_damaged("data_zeroed")
    ),
    Fault(
        "newest_data_deleted", "resume warns and continues from the previous checkpoint", newest_damaged("data_deleted")
    ),
    Fault(
        "newest_index_file_cut",
        "resume warns and continues from the previous checkpoint",
        newest_damaged("index_file_cut"),
    ),
    Fault(
        "eval_generate_agree",
        "gantrain-eval and gantrain-generate take the previous checkpoint too",
        eval_and_generate_agree,
    ),
    Fault(
        "all_checkpoints_unreadable",
        "resume refused in one line, never restarted from step 0",
        all_checkpoints_unreadable,
    ),
    Fault(
        "checkpoint_write_fails", "one line, the earlier checkpoints kept, no ckpt-N_temp/ left", checkpoint_write_fails
    ),
    Fault("config_cut", "resume refused in one line naming .hydra/config.yaml", saved_config_cut),
    Fault("config_deleted", "resume refused in one line naming resume", saved_config_deleted),
    Fault("config_changed_on_resume", "refused in one line naming the key, run unchanged", changed_config_on_resume),
    Fault(
        "environment_value",
        "${oc.env:...} saved as its value; resume works without the variable",
        environment_value_saved,
    ),
    Fault("metrics_line_malformed", "resume warns naming the line and continues", metrics_line_malformed),
    Fault("run_in_use", "a second process is refused in one line naming the holder's PID", run_in_use),
    Fault("lock_holder_killed", "kill -9 leaves no stale lock: resume works", lock_holder_killed),
    Fault("kill_9", "resume loses at most checkpoint_every steps and logs each step once", kill_9),
    Fault("sigterm", "checkpoint at the current step, exit 0", stopped_by(signal.SIGTERM, 0)),
    Fault("ctrl_c", "checkpoint at the current step, exit 130", stopped_by(signal.SIGINT, 130)),
    Fault("divergence", "stops in one line; the last good checkpoint is kept and finite", diverges),
    Fault("divergence_rollback", "rolls back, lowers the learning rates and finishes", rolls_back),
    Fault("full_disk_new_run", "one line naming the file, nothing left on disk", full_disk_new_run),
    Fault("full_disk_resume", "one line, the checkpoints kept, no temporary file left", full_disk_resume),
    Fault("full_disk_generate", "one line naming out, nothing left on disk", full_disk_generate),
    Fault("full_disk_export", "one line naming the export, no 0-byte file, run unchanged", full_disk_export),
    Fault("run_dir_below_a_file", "one line naming hydra.run.dir, the file unchanged", run_dir_below_a_file),
    Fault("run_dir_is_a_file", "one line naming hydra.run.dir, the file unchanged", run_dir_is_a_file),
    Fault("run_dir_read_only", "one line naming hydra.run.dir, nothing written", read_only_folder),
    Fault("new_run_into_a_run", "refused in one line, the run unchanged", new_run_into_a_run),
    Fault(
        "generate_into_a_full_folder", "refused in one line, the user's files unchanged", generate_into_a_full_folder
    ),
    Fault("generate_below_a_file", "one line naming the file, the file unchanged", generate_below_a_file),
    Fault("export_exists", "refused without overwrite=true, replaced with it", export_exists),
    Fault(
        "images_16_32_bit_float",
        "scaled from their full range: black and white stay black and white",
        full_range_images,
    ),
    Fault("images_unreadable", "each skipped with a warning naming it; the rest train", unreadable_images_skipped),
    Fault("images_none_readable", "one line naming dataset.path, nothing written", no_readable_image),
    Fault(
        "labels_out_of_range",
        "one line naming the file and the label, nothing written",
        mnist_refused("label_200", label_200(), "mnist.npz holds the label 200"),
    ),
    Fault(
        "labels_float",
        "one line naming the file, nothing written",
        mnist_refused("float_labels", np.zeros(64, np.float32), "mnist.npz holds float32 labels"),
    ),
    Fault(
        "dataset_file_cut",
        "one line naming the file, nothing written",
        mnist_refused("cut", None, "mnist.npz", damage=cut),
    ),
    Fault(
        "callback_calls_open",
        "+hydra.callbacks.x._target_=builtins.open refused in one line, the file intact",
        override_calls_open("+hydra.callbacks.x._target_"),
    ),
    Fault(
        "launcher_calls_open",
        "-m hydra.launcher._target_=builtins.open refused in one line, the file intact",
        override_calls_open("hydra.launcher._target_", "-m"),
    ),
    Fault(
        "sweep_result_unreadable", "an 'unreadable' row of summary.csv, named on the console", sweep_result_unreadable
    ),
    Fault("hints_quote_the_path", "the Next: commands work pasted into a shell", hints_quote_the_path),
]


def attempt(fault: Fault, place: Place) -> Outcome:
    start = time.monotonic()
    try:
        outcome = fault.inject(place)
    except Exception as err:  # noqa: BLE001 - what this script did not expect is reported as broken
        outcome = Outcome(f"the check itself failed: {type(err).__name__}: {err}", ["the check ran"])
    outcome.happened += f" ({time.monotonic() - start:.0f} s)"
    return outcome


def line(fault: Fault, outcome: Outcome) -> str:
    verdict = "BROKEN" if outcome.broken else "HELD"
    failed = f" [not: {', '.join(outcome.broken)}]" if outcome.broken else ""
    return f"{verdict:6} {fault.name}: expected {fault.promise}; got {outcome.happened}{failed}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2, help="faults run at once (default 2)")
    parser.add_argument("-k", default="", help="run only the faults whose name contains this")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()
    faults = [fault for fault in FAULTS if args.k in fault.name]
    place = Place(Path(tempfile.mkdtemp(prefix="gantrain_faults_")))
    start = time.monotonic()
    try:
        train_base(place)
        with ThreadPoolExecutor(args.jobs) as pool:
            outcomes = pool.map(lambda fault: attempt(fault, place), faults)
            held = 0
            for fault, outcome in zip(faults, outcomes, strict=True):
                print(line(fault, outcome), flush=True)
                held += not outcome.broken
    finally:
        if args.keep:
            print(f"kept {place.root}")
        else:
            shutil.rmtree(place.root, ignore_errors=True)
    print(f"({time.monotonic() - start:.0f} s)")
    print(f"{len(faults)} faults, {held} held")
    sys.exit(0 if held == len(faults) else 1)


if __name__ == "__main__":
    main()
