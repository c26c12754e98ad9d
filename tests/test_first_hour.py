"""A new user's first hour with the real command, run as written from an empty directory: the bare
command, refused commands that leave nothing behind, Ctrl-C twice, what a run says when it ends, a
quiet console, help that explains, and the record of what a run ran on."""

from __future__ import annotations

import csv
import json
import re
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from tests.conftest import (
    COMMAND,
    EVAL_COMMAND,
    GENERATE_COMMAND,
    TINY,
    cli_env,
    gantrain,
    gantrain_in_process,
    snapshot,
    wait_until,
)

TOY = ["model=mlp", *TINY["mlp"], "dataset=ring8", "dataset.num_points=200", "train.batch_size=8", "train.n_critic=1"]
# What TensorFlow prints on a machine without a GPU that is not the user's concern.
NOISE = re.compile(r"cuInit|cudart_stub|absl::InitializeLog|cpu_feature_guard|remapper failed|^[IWE]0000 ")


@pytest.mark.slow
def test_a_bare_command_runs_in_a_dated_directory_and_says_what_next(tmp_path):
    """No hydra.run.dir: outputs/<date>/<time>/, a quiet console, and an ending that names the run."""
    result = gantrain(*TOY, "train.steps=3", cwd=tmp_path, env_home=tmp_path / "home")
    assert result.returncode == 0, result.stderr
    runs = list((tmp_path / "outputs").glob("*/*"))
    assert len(runs) == 1 and re.fullmatch(r"\d{4}-\d\d-\d\d/\d\d-\d\d-\d\d", "/".join(runs[0].parts[-2:]))
    run = Path("outputs", *runs[0].parts[-2:])
    assert (tmp_path / run / "checkpoints" / "ckpt-3.index").is_file()
    noise = [line for line in result.stderr.splitlines() if NOISE.search(line)]
    assert noise == [], noise
    assert f"Finished at step 3 of 3; run directory {run}" in result.stdout
    for command in (
        f"gantrain-eval run_dir={run}",
        f"tensorboard --logdir {run}",
        f"gantrain resume={run}",
        f"gantrain-generate run_dir={run} out={run}/generated format=npz",
    ):
        assert command in result.stdout
    # The suggested gantrain-generate, as the installed console script: the toy's points in an npz.
    generated = subprocess.run(
        [*GENERATE_COMMAND, f"run_dir={run}", f"out={run}/generated", "format=npz"],
        cwd=tmp_path,
        env=cli_env(tmp_path / "home"),
        capture_output=True,
        text=True,
    )
    assert generated.returncode == 0, generated.stderr
    assert json.loads(generated.stdout)["written"] == 64
    assert (tmp_path / run / "generated" / "samples.npz").is_file()
    record = json.loads((tmp_path / run / "environment.jsonl").read_text().splitlines()[0])
    assert record["step"] == 0 and record["devices"] == ["/device:CPU:0"]
    assert {"gantrain", "tensorflow", "keras", "hydra-core", "python", "commit"} <= set(record)


# Refused after Hydra would have made the run directory (the config composes, a value is wrong).
REFUSED = ["train.g_lr=-1", "train.steps=abc", "dataset.path=missing.npz"]


@pytest.mark.parametrize("bad", REFUSED)
def test_a_refused_command_leaves_nothing_behind(tmp_path, bad, capfd, monkeypatch):
    """The real entry point in this process; the console script is refused in the test below."""
    other = tmp_path / "outputs" / "2000-01-01" / "00-00-00"  # a run the user had: untouched
    other.mkdir(parents=True)
    (other / "metrics.jsonl").write_text('{"step": 1}\n')
    before = snapshot(tmp_path)
    code, _, err = gantrain_in_process(*TOY, bad, cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch)
    assert code == 2
    errors = [line for line in err.splitlines() if line.startswith("gantrain: error:")]
    assert len(errors) == 1 and bad.split("=")[0].split(".")[-1] in errors[0], err
    assert snapshot(tmp_path) == before


@pytest.mark.slow
def test_a_refused_command_from_an_empty_directory_creates_no_outputs(tmp_path):
    result = gantrain(*TOY, "train.steps=abc", cwd=tmp_path, env_home=tmp_path.parent / "home")
    assert result.returncode == 2 and list(tmp_path.iterdir()) == []


# The console script's entry point, then whether TensorFlow was imported by the time it exited.
ENTRY_POINT_THEN_TENSORFLOW = """
import sys
from gantrain.commands.train import main
sys.argv[0] = "gantrain"
try:
    main()
finally:
    print("tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr)
"""


@pytest.mark.parametrize(
    "bad, named",
    [
        ("train.steps=abc", "train.steps"),
        ("eval.every=0", "eval.every"),
        ("train.g_lr=${oc.env:GANTRAIN_NOT_SET}", "train.g_lr"),
    ],
)
def test_a_wrong_value_is_refused_before_tensorflow_starts(tmp_path, bad, named):
    """TensorFlow's start-up takes 5 to 10 s; a mistyped value is answered without it."""
    env = cli_env(tmp_path / "home")
    env.pop("GANTRAIN_NOT_SET", None)
    result = subprocess.run(
        [sys.executable, "-c", ENTRY_POINT_THEN_TENSORFLOW, *TOY, bad],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2 and lines[-2].startswith(f"gantrain: error: {named}: "), result.stderr
    assert lines[-1] == "tensorflow imported: False"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_the_second_ctrl_c_ends_the_process_at_once(tmp_path):
    run = tmp_path / "run"
    # One compiled call of a million steps: far longer than the test waits.
    args = [*TOY, "train.steps=10000000", "train.steps_per_call=1000000", f"hydra.run.dir={run}"]
    process = subprocess.Popen(
        [*COMMAND, *args], env=cli_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    shown = bytearray()  # the console as it is written
    reader = threading.Thread(target=lambda: [shown.extend(chunk) for chunk in iter(process.stdout.read1, b"")])
    reader.start()
    # The bar's first line: the signal handlers are in place and the long call is about to start.
    wait_until(lambda: b" 0/10000000 " in shown or process.poll() is not None, "progress bar")
    process.send_signal(signal.SIGINT)
    wait_until(
        lambda: b"press Ctrl-C again to stop at once" in shown or process.poll() is not None,
        "answer to the first Ctrl-C",
        seconds=30,
    )
    process.send_signal(signal.SIGINT)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        pytest.fail(f"still running 10 s after the second Ctrl-C:\n{shown.decode()}")
    finally:
        reader.join()
    assert process.returncode == -signal.SIGINT, shown.decode()
    assert b"press Ctrl-C again to stop at once" in shown


@pytest.mark.slow
def test_a_sweep_ends_with_its_summary_holding_run_directories_and_final_metrics(tmp_path, capfd, monkeypatch):
    """Through the real entry point in this process (test_cli.py runs sweeps through the console script)."""
    sweep = tmp_path / "sw"
    code, out, err = gantrain_in_process(
        "-m",
        "model=mlp",
        *TINY["mlp"],
        "dataset=grid25",
        "dataset.num_points=300",
        "loss=gan,nsgan",
        "train.steps=2",
        "train.batch_size=8",
        "eval.every=2",
        "eval.num_samples=100",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    assert str(Path("sw") / "summary.csv") in out
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert [Path(row["run_dir"]) for row in rows] == [sweep / "0", sweep / "1"]
    assert all(row["modes"] and row["hq"] and row["rkl"] for row in rows)  # the final evaluation


def test_losses_show_in_the_progress_bar_from_the_first_step(tmp_path, make_cfg, capsys):
    from gantrain.run.train import train

    train(make_cfg(*TOY, "train.steps=3", "train.log_every=100"), tmp_path / "run")
    bar = capsys.readouterr().err
    first = [part for part in re.split(r"[\r\n]", bar) if " 1/3 " in part]
    assert first and all("d_loss=" in part and "g_loss=" in part for part in first), bar


def test_the_run_records_what_it_ran_on_in_tensorboard_too(tmp_path, make_cfg):
    import tensorflow as tf

    from gantrain import __version__
    from gantrain.run.train import train

    run = tmp_path / "run"
    train(make_cfg(*TOY, "train.steps=1"), run)
    train(make_cfg(*TOY, "train.steps=2"), run, resume=True)
    records = [json.loads(line) for line in (run / "environment.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [0, 1]  # one line per start
    assert records[0]["gantrain"] == __version__  # the version that wrote the checkpoints
    tags = set()
    for events in (run / "tb").glob("events.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            tags |= {value.tag for value in event.summary.value}
    assert {"config", "environment"} <= tags


@pytest.mark.slow
def test_help_explains_keys_and_groups(tmp_path):
    result = gantrain("--help", cwd=tmp_path)
    assert result.returncode == 0
    assert re.search(r"gp_weight: 10.0 +# lambda", result.stdout)  # the YAML's comment beside the key
    assert "gantrain dataset=folder --help" in result.stdout
    folder = gantrain("dataset=folder", "--help", cwd=tmp_path)
    assert re.search(r"resolution: 64 +# centre-cropped", folder.stdout)
    evaluation = subprocess.run([*EVAL_COMMAND, "--help"], capture_output=True, text=True, env=cli_env())
    for key in ("run_dir=", "checkpoint=latest", "export=", "features=auto", "num_samples="):
        assert key in evaluation.stdout
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "overrides, named",
    [
        (
            ["experiment=grid25", "aux=null"],
            "aux: a group cannot be set to null; drop it with ~aux (e.g. gantrain experiment=grid25 ~aux)",
        ),
        (["+modle=mlp"], "modle: no config defines this key; did you mean model?"),
        (["train.stpes=100"], "train.stpes: no config defines this key; did you mean train.steps?"),
    ],
)
def test_group_and_key_mistakes_are_one_line(tmp_path, overrides, named, capfd, monkeypatch):
    code, _, err = gantrain_in_process(*overrides, cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == f"gantrain: error: {named}"
    assert list(tmp_path.iterdir()) == []


# A typo in a key at any level, or in a group's option, names the nearest one (Hydra would advise
# appending the misspelt key with +, or list the options without the near one).
TYPOS = [
    ("train.stpes=100", "train.stpes: no config defines this key; did you mean train.steps?"),
    ("modle=mlp", "modle: no config defines this key; did you mean model?"),
    ("trian.steps=3", "trian: no config defines this key; did you mean train?"),
    ("model=mlp model.g_hiden=[8]", "model.g_hiden: no config defines this key; did you mean model.g_hidden?"),
    ("+train.stpes=100", "train.stpes: not an option of train; did you mean train.steps?"),
    ("model=dcgn", "model: unknown option 'dcgn'; did you mean dcgan?"),
    ("-m model=mlp,dcgn", "model: unknown option 'dcgn'; did you mean dcgan?"),
    ("model=vae", "model: unknown option 'vae'; known: dcgan, mlp, r3gan, resnet"),
]


@pytest.mark.parametrize("overrides, named", TYPOS, ids=[case[0] for case in TYPOS])
def test_a_typo_names_the_nearest_key_or_option(tmp_path, overrides, named, capfd, monkeypatch):
    """The real entry point in this process: one line, exit 2, nothing written."""
    code, _, stderr = gantrain_in_process(*overrides.split(), cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch)
    assert (code, stderr.strip()) == (2, f"gantrain: error: {named}")
    assert list(tmp_path.iterdir()) == []


def test_a_folder_says_what_it_found_and_a_batch_larger_than_the_data_is_a_warning(tmp_path, make_cfg, caplog):
    import numpy as np
    from PIL import Image

    from gantrain.run.train import train

    for i in range(3):
        Image.fromarray(np.full((12, 10, 3), 60 * i, np.uint8)).save(tmp_path / f"{i}.png")
    cfg = make_cfg(
        "model=dcgan",
        *TINY["dcgan"],
        "dataset=folder",
        f"dataset.path={tmp_path}",
        "dataset.resolution=8",
        "train.steps=1",
        "train.batch_size=4",
        "train.n_critic=1",
    )
    caplog.set_level("INFO")
    train(cfg, tmp_path / "run")
    assert f"dataset=folder: 3 images under {tmp_path}, each centre-cropped and resized to 8x8x3" in caplog.text
    assert "train.batch_size=4 is larger than the dataset (3 examples)" in caplog.text


@pytest.mark.parametrize("log_level, shown", [(None, False), ("0", True)])
def test_tensorflow_s_own_log_level_turns_the_console_filter_off(log_level, shown):
    """Without TF_CPP_MIN_LOG_LEVEL, TensorFlow's start-up noise written to file descriptor 2 is
    dropped and other lines pass; with TF_CPP_MIN_LOG_LEVEL=0 every line shows."""
    import sys

    noise = "E0000 00:00:1700000000.000000    1 cuda_executor.cc:1228] failed call to cuInit: UNKNOWN ERROR (303)"
    script = (
        "import os; from gantrain.commands import console; console.quiet_tensorflow(); "
        f"os.write(2, b'{noise}\\n'); os.write(2, b'a line of the user\\'s\\n')"
    )
    env = cli_env() if log_level is None else dict(cli_env(), TF_CPP_MIN_LOG_LEVEL=log_level)
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "a line of the user's" in result.stderr
    assert (noise in result.stderr) is shown
