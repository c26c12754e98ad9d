"""Shared fixtures: tiny dataset files in the official formats, and composed configs."""

from __future__ import annotations

import gc
import gzip
import os
import pickle
import shutil
import struct
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The same devices and arithmetic on every machine, set before TensorFlow initialises and inherited
# by the CLI subprocesses (cli_env copies this environment): the CPU only, also where a
# tensorflow[and-cuda] install finds GPUs (which would add devices and replicas); one thread per op,
# since pytest-xdist already runs a test process per core, and a kernel's summation order can
# depend on how many threads share it.
os.environ["CUDA_VISIBLE_DEVICES"] = "-1"
os.environ["TF_NUM_INTRAOP_THREADS"] = "1"
os.environ["TF_NUM_INTEROP_THREADS"] = "1"

import tensorflow as tf  # noqa: E402

# Two logical CPUs, so mirrored strategies can be tested without GPUs. This must happen before
# TensorFlow initialises its devices; the default strategy still uses one.
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402  after the device set-up above, like everything that imports TensorFlow

from gantrain import api  # noqa: E402  likewise


def tiny_networks() -> dict[str, tuple[str, ...]]:
    """Each model's debug=tiny networks (configs/debug/model/tiny_<model>.yaml) as overrides, for the
    tests that set their own run length and periods (the rest of debug=tiny would change them)."""
    from omegaconf import OmegaConf

    from gantrain.config import config_dir
    from gantrain.models import MODELS

    # Tuples: every test reads this one table, and a test that appended to a list here changed it for
    # the tests after it in the same process.
    return {
        model: tuple(
            f"model.{key}={str(value).replace(' ', '')}"
            for key, value in OmegaConf.load(config_dir() / "debug" / "model" / f"tiny_{model}.yaml").items()
        )
        for model in MODELS.names()
    }


# Models small enough for a CPU test to train a few steps in about a second.
TINY = tiny_networks()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file of unsigned bytes, gzipped when the name ends in .gz."""
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def fake_images(n: int, h: int, w: int, c: int | None = None, seed: int = 0) -> np.ndarray:
    shape = (n, h, w) if c is None else (n, h, w, c)
    return np.random.default_rng(seed).integers(0, 256, size=shape, dtype=np.uint8)


def write_mnist_npz(folder: Path, count: int = 64) -> Path:
    """folder/mnist.npz (the folder made if need be): a ``count``-image MNIST in the Keras mnist.npz layout."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "mnist.npz"
    labels = np.arange(count, dtype=np.uint8) % 10
    np.savez(
        path,
        x_train=fake_images(count, 28, 28),
        y_train=labels,
        x_test=fake_images(16, 28, 28, seed=1),
        y_test=labels[:16],
    )
    return path


@pytest.fixture
def mnist_npz(tmp_path: Path) -> Path:
    return write_mnist_npz(tmp_path)


def write_cifar_batches(folder: Path, per_batch: int = 4) -> dict[str, np.ndarray]:
    """The official cifar-10-batches-py layout with ``per_batch`` images per batch."""
    folder.mkdir(parents=True)
    batches = {}
    for i, name in enumerate([f"data_batch_{k}" for k in range(1, 6)] + ["test_batch"]):
        data = fake_images(per_batch, 1, 3072, seed=i).reshape(per_batch, 3072)
        batches[name] = data
        with open(folder / name, "wb") as f:
            # Every class, in an order a loader that sorted or regrouped them would not keep.
            labels = [7 * (i * per_batch + k) % 10 for k in range(per_batch)]
            pickle.dump(
                {b"batch_label": name.encode(), b"labels": labels, b"data": data, b"filenames": [b"x.png"] * per_batch},
                f,
                protocol=2,
            )
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"airplane"] * 10, b"num_vis": 3072}, f, protocol=2)
    return batches


@pytest.fixture
def cifar_archive(tmp_path: Path) -> Path:
    """cifar-10-python.tar.gz holding cifar-10-batches-py/."""
    write_cifar_batches(tmp_path / "src" / "cifar-10-batches-py")
    path = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        archive.add(tmp_path / "src" / "cifar-10-batches-py", arcname="cifar-10-batches-py")
    return path


@pytest.fixture(autouse=True)
def seeded():
    """Layers built without a seed take one from Python's global ``random``: seeded before every
    test, their weights do not depend on which tests ran before in the same process."""
    keras.utils.set_random_seed(0)


@pytest.fixture(autouse=True)
def own_keras_cache(tmp_path_factory, monkeypatch):
    """Caches (classifiers, reference statistics, datasets) never come from the user's Keras cache."""
    monkeypatch.setenv("KERAS_HOME", str(tmp_path_factory.getbasetemp() / "keras_home"))
    monkeypatch.delenv("GANTRAIN_DATA_DIR", raising=False)


@pytest.fixture
def make_cfg():
    """compose(overrides) -> the app's config, as the CLI would build it."""
    return lambda *overrides: api.compose(overrides)


def overrides_of(group: str, node: dict) -> list[str]:
    """A group's node as command-line overrides: {"name": "mlp", "z_dim": 3} -> model=mlp model.z_dim=3."""
    values = {
        k: str(v).replace(" ", "") if isinstance(v, list) else str(v).lower() if isinstance(v, bool) else v
        for k, v in node.items()
        if k != "name"
    }
    return [f"{group}={node['name']}", *(f"{group}.{k}={v}" for k, v in values.items())]


def build_step(overrides: list[str], data: tf.Tensor, strategy=None, **changes):
    """(gan, compiled step) for ``data`` through the one builder, as train() makes them; ``changes``
    replace parts of the GAN first (a recording objective, say)."""
    import dataclasses

    from gantrain.config import check_train
    from gantrain.training.gan import build_gan
    from gantrain.training.step import make_train_step

    cfg = api.compose(overrides)
    gan = build_gan(cfg, tuple(data.shape[1:]), strategy)
    if changes:
        gan = dataclasses.replace(gan, **changes)
    return gan, make_train_step(gan, data, check_train(cfg.train))


# The installed console scripts, as a user runs them.
EXE = shutil.which("gantrain", path=str(Path(sys.executable).parent))
COMMAND = [EXE] if EXE else [sys.executable, "-m", "gantrain.commands.train"]
EVAL_EXE = shutil.which("gantrain-eval", path=str(Path(sys.executable).parent))
EVAL_COMMAND = [EVAL_EXE] if EVAL_EXE else [sys.executable, "-m", "gantrain.commands.evaluate"]
GENERATE_EXE = shutil.which("gantrain-generate", path=str(Path(sys.executable).parent))
GENERATE_COMMAND = [GENERATE_EXE] if GENERATE_EXE else [sys.executable, "-m", "gantrain.commands.generate"]


def cli_env(home: Path | None = None) -> dict[str, str]:
    """The environment for a CLI subprocess, as a user's shell has it (TensorFlow's log level
    unset: the console is what a user sees); ``home`` isolates the Keras cache from the user's."""
    env = dict(os.environ)
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)
    env.pop("HYDRA_FULL_ERROR", None)
    if home is not None:
        env["KERAS_HOME"] = str(home)
        env.pop("GANTRAIN_DATA_DIR", None)
    return env


def gantrain(*args: str, cwd: Path | None = None, env_home: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd, env=cli_env(env_home), capture_output=True, text=True, timeout=600
    )


def wait_until(condition: Callable[[], bool], what: str, seconds: float = 120) -> None:
    """Poll ``condition`` until it holds, or fail naming ``what`` after ``seconds``: a wait for
    progress a process shows, not a fixed sleep that a slower or faster machine gets wrong."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {seconds} s")
        time.sleep(0.05)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every path under ``folder`` with its bytes: equal snapshots mean nothing was touched."""
    return {str(p.relative_to(folder)): p.read_bytes() if p.is_file() else b"<dir>" for p in folder.rglob("*")}


def checkpoint_values(path: str) -> dict[str, np.ndarray]:
    """The state a checkpoint holds, by name; not how often the run saved, nor the object graph's
    metadata (layer names differ between two models built in one process), nor a data stream's
    position (a variant tensor NumPy cannot hold: the losses after it show it was restored)."""
    reader = tf.train.load_checkpoint(path)
    return {
        name: reader.get_tensor(name)
        for name, dtype in reader.get_variable_to_dtype_map().items()
        if dtype != tf.variant
        and name not in ("save_counter/.ATTRIBUTES/VARIABLE_VALUE", "_CHECKPOINTABLE_OBJECT_GRAPH")
    }


def straight_and_resumed(make_cfg, folder: Path, options: list[str], steps: int, split: int) -> list[str]:
    """Train ``steps`` steps in one go, and ``split`` steps then a resume to ``steps``; the two
    final checkpoints (straight, resumed), for :func:`assert_same_state`."""
    from gantrain.run.train import train

    train(make_cfg(*options, f"train.steps={steps}"), folder / "straight")
    train(make_cfg(*options, f"train.steps={split}"), folder / "resumed")
    train(make_cfg(*options, f"train.steps={steps}"), folder / "resumed", resume=True)
    return [str(folder / run / "checkpoints" / f"ckpt-{steps}") for run in ("straight", "resumed")]


def assert_same_state(path_a: str, path_b: str) -> None:
    a, b = checkpoint_values(path_a), checkpoint_values(path_b)
    assert a.keys() == b.keys() and any("g_optimizer/_trainable_variables" in name for name in a)  # G's weights
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# Bit for bit is a promise on one machine with one build of the libraries; across CPUs (oneDNN and
# Eigen pick kernels per instruction set) values recorded elsewhere agree up to float32 round-off,
# which a few training steps grow from 1e-7 to a few 1e-6 of an array's scale.
ACROSS_MACHINES = {"rtol": 1e-4, "scale_atol": 1e-5}


def assert_equal_up_to_round_off(reached: np.ndarray, recorded: np.ndarray, name: str = "") -> None:
    """``reached`` (computed here) equals ``recorded`` (computed on another CPU) up to round-off:
    each element within ``rtol`` of itself or ``scale_atol`` of the array's largest magnitude.
    Integers (steps, random-stream states) are exact on every machine."""
    if not np.issubdtype(np.asarray(recorded).dtype, np.floating):
        np.testing.assert_array_equal(reached, recorded, err_msg=name)
        return
    scale = float(np.max(np.abs(recorded))) if np.size(recorded) else 0.0
    np.testing.assert_allclose(
        reached, recorded, rtol=ACROSS_MACHINES["rtol"], atol=ACROSS_MACHINES["scale_atol"] * scale, err_msg=name
    )


def assert_same_step(single: tuple[dict, list], mirrored: tuple[dict, list]) -> None:
    """A mirrored step's (metrics, weights) equal a default step's up to float32 summation order."""
    assert mirrored[0].keys() == single[0].keys()
    for name in single[0]:
        assert mirrored[0][name] == pytest.approx(single[0][name], rel=1e-4, abs=1e-5), name
    for a, b in zip(single[1], mirrored[1], strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def gantrain_in_process(*args: str, cwd: Path, capsys, monkeypatch) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of the real entry point, ``gantrain.commands.train.main``, run in this
    process: no interpreter and TensorFlow start-up per command, the same console output."""
    from absl import logging as absl_logging

    from gantrain.commands import train as cli

    # Hydra's logging set-up closes every existing handler; absl's would close the stream it was
    # made with (pytest's capture of an earlier test) unless that is one of the standard streams.
    monkeypatch.setattr(absl_logging.get_absl_handler().python_handler, "stream", sys.__stderr__)
    monkeypatch.chdir(cwd)
    monkeypatch.setattr(sys, "argv", ["gantrain", *args])
    # Objects left by earlier tests go now, not during the command: TensorFlow warns when it collects
    # a checkpoint status with unrestored values, through a handler whose stream may be closed.
    gc.collect()
    capsys.readouterr()
    try:
        cli.main()
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="session")
def trained(tmp_path_factory) -> Callable[[list[str], Path], Path]:
    """trained(overrides, run_dir): a copy at run_dir of a finished run of those overrides, trained
    once per test process (later calls copy it): tests that only read or damage a run share one."""
    from gantrain.run.train import train

    made: dict[tuple[str, ...], Path] = {}

    def copy_of(overrides: list[str], run_dir: Path) -> Path:
        key = tuple(overrides)
        if key not in made:
            made[key] = tmp_path_factory.mktemp("trained") / "run"
            train(api.compose(overrides), made[key])
        shutil.copytree(made[key], run_dir)
        return run_dir

    return copy_of


@pytest.fixture
def built_gans(monkeypatch) -> list:
    """The GANs train() builds during the test, in order: the real objects, to read what a run holds
    (its optimizers' learning rates, say)."""
    import gantrain.run.train as train_module

    built = []
    build_gan = train_module.build_gan

    def building(*args, **kw):
        built.append(build_gan(*args, **kw))
        return built[-1]

    monkeypatch.setattr(train_module, "build_gan", building)
    return built


@pytest.fixture
def full_disk(monkeypatch):
    """The list of full folders: while a folder is in it, every write to a file under it fails as on
    a full disk (ENOSPC), after the file has been created, as the kernel does. Python's opener is
    patched: a full file system cannot be made here without mounting one."""
    import builtins
    import errno
    import io

    real_open, full = io.open, []

    class FullFile:
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
        opened = real_open(file, mode, *args, **kwargs)
        name = os.readlink(f"/proc/self/fd/{file}") if isinstance(file, int) else os.path.abspath(file)
        if any(c in mode for c in "wax+") and any(
            Path(name).is_relative_to(Path(folder).absolute()) for folder in full
        ):
            return FullFile(opened)
        return opened

    monkeypatch.setattr(builtins, "open", opener)
    monkeypatch.setattr(io, "open", opener)
    return full


# Seconds each file's tests took (pytest --durations on the 2-core AMD EPYC, two test processes),
# for the order the files start in: with one test process per core and a file's tests kept
# together, a long file started late leaves the other process idle at the end, so the longest start
# first (xdist hands each process the next file as it runs out). pyproject.toml turns off xdist's
# own order (most tests first). A file not listed takes under 5 s and starts after these.
SECONDS = {
    "test_readme.py": 271,
    "test_reliability.py": 166,
    "test_train.py": 148,
    "test_evaluate.py": 97,
    "test_matrix.py": 96,
    "test_cli.py": 78,
    "test_first_hour.py": 58,
    "test_features.py": 54,
    "test_conditional.py": 53,
    "test_schedules.py": 50,
    "test_strategies.py": 40,
    "test_export.py": 34,
    "test_augment.py": 32,
    "test_run_store.py": 30,
    "test_packing.py": 28,
    "test_eval_during_training.py": 26,
    "test_stream.py": 22,
    "test_loggers.py": 19,
    "test_sampling.py": 17,
    "test_training_options.py": 15,
    "test_r3gan.py": 14,
    "test_targets.py": 13,
    "test_transport.py": 13,
    "test_models.py": 12,
    "test_inception.py": 12,
    "test_generate.py": 11,
    "test_protocol.py": 9,
    "test_load.py": 7,
    "test_config.py": 6,
    "test_step.py": 5,
}


def pytest_collection_modifyitems(items: list) -> None:
    items.sort(key=lambda item: -SECONDS.get(item.path.name, 0))  # stable: a file's tests keep their order
