"""gantrain-export: each format gives G's own output on the same noise (exactly for the SavedModel and
the .keras file, which run TensorFlow's own kernels; within 1e-5 for TensorFlow Lite and ONNX, whose
kernels sum in another order), the SavedModel's sample() gives gantrain-generate's images for a seed
and loads without gantrain, and bad input is refused with one line, writing nothing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.commands import export, generate
from tests.conftest import TINY, snapshot, write_mnist_npz

COMMON = ["train.steps=2", "train.batch_size=8", "train.n_critic=1", "train.sample_every=100"]
CONVERTED = {"rtol": 1e-5, "atol": 1e-5}  # TensorFlow Lite and ONNX: another summation order than TensorFlow's


@pytest.fixture(scope="module")
def runs(trained, tmp_path_factory) -> dict[str, Path]:
    """A conditional dcgan with a moving average of G on a tiny MNIST file, and an mlp on ring8."""
    root = tmp_path_factory.mktemp("export")
    mnist = write_mnist_npz(root / "data")
    image = ["model=dcgan", *TINY["dcgan"], "model.conditional=true", "train.ema=0.9", "loss=hinge"]
    return {
        "dcgan": trained([*image, "dataset=mnist", f"dataset.path={mnist}", *COMMON], root / "dcgan"),
        "toy": trained(["model=mlp", *TINY["mlp"], "dataset=ring8", "dataset.num_points=256", *COMMON], root / "toy"),
        "plain_dcgan": trained(
            ["model=dcgan", *TINY["dcgan"], "dataset=mnist", f"dataset.path={mnist}", *COMMON], root / "plain_dcgan"
        ),
    }


def run(command, capsys, *args: str) -> tuple[int, str, str]:
    """(exit code, stdout, stderr) of a console entry point's ``main`` run in this process."""
    capsys.readouterr()
    try:
        command.main(list(args))
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def exported(capsys, run_dir: Path, out: Path, format: str) -> dict:
    code, stdout, err = run(export, capsys, f"run_dir={run_dir}", f"out={out}", f"format={format}")
    assert code == 0, err
    return json.loads(stdout.splitlines()[-1])


def restored(run_dir: Path):
    """The run's G as gantrain-generate restores it (the moving average, where the run kept one)."""
    from gantrain.data import DATASETS
    from gantrain.evaluation.saved_run import checkpoint_path, restore_models
    from gantrain.run.directory import RunDir

    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    return restore_models(cfg, DATASETS.build(cfg.dataset), checkpoint_path(RunDir(run_dir), "latest"))[0]


def noise_and_labels(n: int = 5, z_dim: int = 4) -> tuple[np.ndarray, np.ndarray]:
    z = np.random.default_rng(1).standard_normal((n, z_dim)).astype(np.float32)
    return z, np.arange(n, dtype=np.int32) % 10


def generated(capsys, run_dir: Path, out: Path, seed: int, *keys: str) -> np.ndarray:
    """gantrain-generate's samples (format=npz) of ``seed``."""
    code, _, err = run(generate, capsys, f"run_dir={run_dir}", f"out={out}", "format=npz", f"seed={seed}", *keys)
    assert code == 0, err
    with np.load(out / "samples.npz") as stored:
        return stored["x"]


def test_savedmodel_generates_g_s_output_and_samples_gantrain_generate_s_images(runs, tmp_path, capsys):
    summary = exported(capsys, runs["dcgan"], tmp_path / "sm", "savedmodel")
    manifest = json.loads((tmp_path / "sm" / "manifest.json").read_text())
    assert (manifest["model"], manifest["resolution"], manifest["channels"], manifest["classes"]) == (
        "dcgan",
        28,
        1,
        10,
    )
    assert (manifest["generator"], manifest["step"], manifest["z"]["shape"]) == ("ema", 2, [4])
    assert "stateless_normal([z_dim], seed=[seed, 2])" in manifest["seed_rule"]
    loaded = tf.saved_model.load(summary["file"])
    z, labels = noise_and_labels()
    np.testing.assert_array_equal(
        loaded.generate(z, labels.astype(np.int64)).numpy(), restored(runs["dcgan"])([z, labels], training=False)
    )
    # Each seed's image is the first gantrain-generate draws for that seed and class.
    images = loaded.sample(tf.constant([5, 9], tf.int64), tf.constant([7, 3], tf.int64)).numpy()
    assert images.dtype == np.uint8 and images.shape == (2, 28, 28, 1)
    for i, (seed, label) in enumerate(((5, 7), (9, 3))):
        drawn = generated(capsys, runs["dcgan"], tmp_path / f"g{seed}", seed, f"classes=[{label}]", "num_samples=3")
        np.testing.assert_array_equal(images[i], drawn[0])
    assert not np.array_equal(images[0], images[1])


def test_savedmodel_of_a_toy_run_samples_points(runs, tmp_path, capsys):
    summary = exported(capsys, runs["toy"], tmp_path / "sm", "savedmodel")
    loaded = tf.saved_model.load(summary["file"])  # held: its functions read its variables
    points = loaded.sample(tf.constant([3], tf.int64)).numpy()
    assert points.dtype == np.float32 and points.shape == (1, 2)
    np.testing.assert_array_equal(points[0], generated(capsys, runs["toy"], tmp_path / "g", 3, "num_samples=1")[0])
    assert json.loads((tmp_path / "sm" / "manifest.json").read_text())["output"] == "2-D points (n, 2)"


def run_without_gantrain(lines: str, work: Path) -> None:
    """``lines`` of Python in ``python -I`` (no PYTHONPATH, no working directory on the path) from the
    new empty folder ``work``, with gantrain made unimportable wherever it is installed."""
    work.mkdir()
    script = "import sys\nsys.modules['gantrain'] = None\n" + lines
    env = {"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "CUDA_VISIBLE_DEVICES": "-1"}
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=work, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def test_savedmodel_loads_in_a_python_without_gantrain(runs, tmp_path, capsys):
    """``python -I`` (no PYTHONPATH, no working directory on the path) from an empty folder, with
    gantrain made unimportable: a model that needed it would fail to load; its outputs are the ones
    this process computes."""
    summary = exported(capsys, runs["dcgan"], tmp_path / "sm", "savedmodel")
    work = tmp_path / "empty"
    run_without_gantrain(
        "import numpy as np, tensorflow as tf\n"
        f"model = tf.saved_model.load({summary['file']!r})\n"
        "np.save('sample.npy', model.sample(tf.constant([5, 9], tf.int64), tf.constant([7, 3], tf.int64)).numpy())\n",
        work,
    )
    loaded = tf.saved_model.load(summary["file"])
    here = loaded.sample(tf.constant([5, 9], tf.int64), tf.constant([7, 3], tf.int64))
    np.testing.assert_array_equal(np.load(work / "sample.npy"), here.numpy())


@pytest.mark.parametrize("run_name", ["plain_dcgan", "toy"])
def test_keras_file_of_a_plain_generator_loads_in_a_python_without_gantrain(runs, run_name, tmp_path, capsys):
    """An unconditional MLP or DCGAN G is made of Keras's own layers: its ``.keras`` file opens with
    ``keras.saving.load_model`` in ``python -I`` with gantrain unimportable, and gives G's output."""
    summary = exported(capsys, runs[run_name], tmp_path / "k", "keras")
    assert json.loads(Path(summary["manifest"]).read_text())["custom_layers"] == []
    z = np.random.default_rng(1).standard_normal((5, 4)).astype(np.float32)
    np.save(tmp_path / "z.npy", z)
    work = tmp_path / "empty"
    run_without_gantrain(
        "import keras, numpy as np\n"
        f"g = keras.saving.load_model({summary['file']!r})\n"
        f"np.save('out.npy', g(np.load({str(tmp_path / 'z.npy')!r}), training=False).numpy())\n",
        work,
    )
    np.testing.assert_array_equal(np.load(work / "out.npy"), restored(runs[run_name])(z, training=False))


def test_keras_file_reloads_to_g_s_output(runs, tmp_path, capsys):
    import keras

    import gantrain.models  # noqa: F401  registers the custom layers, as the guide tells users

    summary = exported(capsys, runs["dcgan"], tmp_path / "k", "keras")
    assert json.loads(Path(summary["manifest"]).read_text())["custom_layers"] == ["ConditionalBatchNorm"]
    z, labels = noise_and_labels()
    reloaded = keras.saving.load_model(summary["file"])
    np.testing.assert_array_equal(
        reloaded([z, labels], training=False).numpy(), restored(runs["dcgan"])([z, labels], training=False)
    )


@pytest.mark.parametrize("run_name", ["dcgan", "toy"])
def test_tflite_gives_g_s_output(runs, run_name, tmp_path, capsys):
    summary = exported(capsys, runs[run_name], tmp_path / "t", "tflite")
    z, labels = noise_and_labels()
    inputs = {"z": z, "labels": labels} if run_name == "dcgan" else {"z": z}
    interpreter = tf.lite.Interpreter(model_path=summary["file"])
    (output,) = interpreter.get_signature_runner()(**inputs).values()
    generator = restored(runs[run_name])
    expected = generator([z, labels] if run_name == "dcgan" else z, training=False).numpy()
    np.testing.assert_allclose(output, expected, **CONVERTED)


def test_onnx_gives_g_s_output(runs, tmp_path, capsys):
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason='the onnx extra is not installed: pip install "gantrain[onnx]"'
    )
    pytest.importorskip("tf2onnx", reason='the onnx extra is not installed: pip install "gantrain[onnx]"')
    summary = exported(capsys, runs["dcgan"], tmp_path / "o", "onnx")
    z, labels = noise_and_labels()
    (output,) = onnxruntime.InferenceSession(summary["file"]).run(None, {"z": z, "labels": labels})
    np.testing.assert_allclose(output, restored(runs["dcgan"])([z, labels], training=False).numpy(), **CONVERTED)


def test_bad_input_is_one_line_naming_the_key_and_writes_nothing(runs, tmp_path, capsys, monkeypatch):
    import shutil

    bare = tmp_path / "bare"
    shutil.copytree(runs["toy"], bare)
    shutil.rmtree(bare / "checkpoints")
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "mine.txt").write_text("the user's")
    monkeypatch.setitem(sys.modules, "tf2onnx", None)  # an install without the onnx extra
    cases = [
        ([f"run_dir={runs['toy']}", f"out={tmp_path / 'new'}", "format=pb"], "format: unknown format 'pb'"),
        ([f"run_dir={bare}", f"out={tmp_path / 'new'}"], "has no checkpoint yet"),
        ([f"run_dir={runs['toy']}", f"out={taken}"], "out: "),
        ([f"run_dir={runs['toy']}", f"out={tmp_path / 'new'}", "format=onnx"], 'pip install "gantrain[onnx]"'),
    ]
    before = snapshot(tmp_path)
    for args, message in cases:
        code, out, err = run(export, capsys, *args)
        assert code == 2, args
        assert err.count("\n") == 1 and err.startswith("gantrain-export: error: ") and message in err, err
        assert out == ""
    assert snapshot(tmp_path) == before
