"""Every ``gantrain`` / ``gantrain-eval`` / ``gantrain-generate`` command in README.md's code blocks runs as written, in
README order, from one empty working directory: a README that drifts from the code fails here.

Tiny data stands in for the real files (MNIST in the Keras cache and at ``../shared/data``), and
CI adds overrides that shrink the work (:func:`shrunk`), never ones that change what is tested.
The commands run through the real entry points in one process; the console scripts themselves are
run as subprocesses in test_first_hour.py and test_cli.py.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import numpy as np
import pytest

from gantrain import api
from tests.conftest import TINY, fake_images, gantrain_in_process

README = Path(__file__).resolve().parents[1] / "README.md"

# Commands that need what CI does not have, and why. Each must still be in the README.
CANNOT_RUN = {
    "strategy=multi_worker": "needs two machines, host1 and host2",
    "hydra/launcher=slurm": "needs a SLURM cluster",
}
# The commands that read a trained run, by their entry points' modules.
SAMPLE_COMMANDS = {"gantrain-eval": "commands.evaluate", "gantrain-generate": "commands.generate"}
# New runs whose checkpoints later README commands read by step: they run at full length.
FULL_LENGTH = ("gantrain model=mlp dataset=grid25 loss=wgan_gp",)


def readme_commands() -> list[tuple[str, list[str]]]:
    """(the command as written, its words) for each gantrain/gantrain-eval/gantrain-generate command in a bash block."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", README.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
                    words = words[1:]
                if words and words[0] in ("gantrain", *SAMPLE_COMMANDS):
                    commands.append((" ".join(shlex.split(part, comments=True)), words))
    return commands


def shrunk(written: str, words: list[str]) -> list[str]:
    """The overrides CI adds: debug=tiny cut to 2 steps for a new run (a full-length run keeps its
    own periods and takes only debug=tiny's networks), 2 more for a resume, few points and trials;
    nothing for gantrain-eval and gantrain-generate."""
    if words[0] in SAMPLE_COMMANDS:
        return []
    args = [w for w in words[1:] if w != "-m"]
    if any(a.startswith("resume=") for a in args):
        return ["train.steps=4"]
    cfg = api.compose(first_job([a for a in args if not a.startswith("hydra")]))
    extra = TINY[cfg.model.name] if written.startswith(FULL_LENGTH) else ["debug=tiny", "train.steps=2"]
    if "num_points" in cfg.dataset:
        extra.append("dataset.num_points=300")
    if any(a.startswith("hparams_search=") for a in args):
        extra.append("hydra.sweeper.n_trials=2")
    return extra


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a sweep's first job (of a single run: themselves)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0][0]


def tiny_mnist(path: Path) -> None:
    """640 images: enough for the README's 1 % subset (600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    labels = np.arange(640, dtype=np.uint8) % 10
    np.savez(path, x_train=fake_images(640, 28, 28), y_train=labels, x_test=fake_images(16, 28, 28, seed=1),
             y_test=labels[:16])


def tiny_folder(path: Path) -> None:
    from PIL import Image

    path.mkdir()
    for i, image in enumerate(fake_images(8, 40, 48, 3)):
        Image.fromarray(image).save(path / f"{i}.png")


def test_the_readme_lists_what_ci_cannot_run():
    written = [command for command, _ in readme_commands()]
    assert len(written) >= 10
    for marker in CANNOT_RUN:
        assert any(marker in command for command in written), f"{marker} is no longer in the README"


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path, capfd, monkeypatch):
    """Through the real entry points, in this process (one TensorFlow start-up for all of them)."""
    import importlib

    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    tiny_mnist(home / "datasets" / "mnist.npz")  # where a download would put it
    tiny_mnist(tmp_path / "shared" / "data" / "mnist.npz")  # ../shared/data/mnist.npz from work/
    tiny_folder(work / "my_images")
    monkeypatch.setenv("KERAS_HOME", str(home))
    ran = []
    for written, words in readme_commands():
        if any(marker in written for marker in CANNOT_RUN):
            continue
        args = words[1:] + shrunk(written, words)
        if words[0] in SAMPLE_COMMANDS:
            monkeypatch.chdir(work)
            capfd.readouterr()
            try:
                importlib.import_module(f"gantrain.{SAMPLE_COMMANDS[words[0]]}").main(args)
                code = 0
            except SystemExit as exit_:
                code = exit_.code
            out, err = capfd.readouterr()
        else:
            code, out, err = gantrain_in_process(*args, cwd=work, capsys=capfd, monkeypatch=monkeypatch)
        assert code == 0, f"{written}\n{out[-2000:]}\n{err[-3000:]}"
        assert "Traceback" not in err, written
        ran.append(written)
    assert len(ran) >= 10
