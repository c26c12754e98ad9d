"""Every ``gantrain`` / ``gantrain-eval`` / ``gantrain-generate`` / ``gantrain-export`` command in the bash
blocks of README.md and of each page under docs/ runs as written, in the page's order, from an empty
working directory per page: documentation that drifts from the code fails here.

Tiny data stands in for the real files (MNIST in the Keras cache; the users' data folder of the
examples, ``/data/``, moved into the test's directory by :func:`in_tmp`), and CI adds overrides that
shrink the work (:func:`shrunk`), never ones that change what is tested.
The commands run through the real entry points in one process; the console scripts themselves are
run as subprocesses in test_first_hour.py and test_cli.py. A training command written the same way
on an earlier page, from the same state, is trained once (:class:`Trained`).
"""

from __future__ import annotations

import csv
import re
import shlex
import shutil
import time
from pathlib import Path

import pytest

from gantrain import api
from tests.conftest import TINY, fake_images, gantrain_in_process, write_mnist_npz

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
# Each page's commands run in their own directory, so a page that reads a run makes it first.
PAGES = [README, *sorted((ROOT / "docs").rglob("*.md"))]
# The examples' data folder, as a user's machine would have it; the test puts tiny files there in tmp.
USER_DATA = "/data/"

# Commands that need what CI does not have, and why. Each must still be on a page.
CANNOT_RUN = {
    "strategy=multi_worker": "needs two machines, host1 and host2",
    "hydra/launcher=slurm": "needs a SLURM cluster",
}
# The commands that read a trained run, by their entry points' modules.
SAMPLE_COMMANDS = {"gantrain-eval": "evaluate", "gantrain-generate": "generate", "gantrain-export": "export"}
# New runs whose checkpoints later commands of their page read by step, by page: they run at full
# length there (the same command elsewhere is shrunk like any other).
FULL_LENGTH = {"docs/guides/evaluation.md": ("gantrain model=mlp dataset=grid25 loss=wgan_gp",)}


def page_commands(page: Path) -> list[tuple[str, list[str]]]:
    """(the command as written, its words) for each gantrain command (or one of SAMPLE_COMMANDS) in a bash block."""
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            for part in line.split("&&"):
                words = shlex.split(part, comments=True)
                while words and re.match(r"^[A-Z_]+=", words[0]):  # VAR=value before the command
                    words = words[1:]
                if words and words[0] in ("gantrain", *SAMPLE_COMMANDS):
                    commands.append((" ".join(shlex.split(part, comments=True)), words))
    return commands


def in_tmp(words: list[str], root: Path) -> list[str]:
    """The words with every value in the users' data folder (``dataset.path=/data/mnist.npz``) moved
    under ``root``, where the test placed tiny files: nothing is read or written outside tmp."""
    return [re.sub(f"(?<==){USER_DATA}", f"{root}{USER_DATA}", word) for word in words]


def shrunk(written: str, words: list[str], full_length: tuple[str, ...] = ()) -> list[str]:
    """The overrides CI adds: debug=tiny cut to 2 steps for a new run (a full-length run keeps its
    own periods and takes only debug=tiny's networks, with as many steps per compiled call as
    :func:`steps_per_call` allows), 2 more for a resume, few points and trials;
    for gantrain-eval, 200 samples where the page gives no count (26,000 for stacked MNIST would
    take minutes); nothing for the other commands that read a run (SAMPLE_COMMANDS)."""
    if words[0] == "gantrain-eval" and not any(w.startswith("num_samples=") for w in words):
        return ["num_samples=200"]
    if words[0] in SAMPLE_COMMANDS:
        return []
    args = [w for w in words[1:] if w != "-m"]
    if any(a.startswith("resume=") for a in args):
        return ["train.steps=4"]
    cfg = api.compose(first_job([a for a in args if not a.startswith("hydra")]))
    # A copy: TINY is every test's table, and the lines below append to this list.
    if written.startswith(full_length):
        extra = [*TINY[cfg.model.name], f"train.steps_per_call={steps_per_call(cfg)}"]
    else:
        extra = ["debug=tiny", "train.steps=2"]
    if "num_points" in cfg.dataset:
        extra.append("dataset.num_points=300")
    if any(a.startswith("hparams_search=") for a in args):
        extra.append("hydra.sweeper.n_trials=2")
    return extra


def steps_per_call(cfg) -> int:
    """The most steps per compiled call that leave every report of the run where it was: reports
    land on call boundaries, and the steps per call change nothing else (test_train.py says so
    bit for bit). The evaluation guide's toy run returns to Python every 100 steps, not every step."""
    import math

    periods = [cfg.train.steps, cfg.train.sample_every, cfg.train.checkpoint_every, cfg.train.log_every, cfg.eval.every]
    return math.gcd(*(period for period in periods if period))


def first_job(overrides: list[str]) -> list[str]:
    """The overrides of a sweep's first job (of a single run: themselves)."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    return BasicSweeper.split_arguments(OverridesParser.create().parse_overrides(overrides), None)[0][0]


def tiny_folder(path: Path) -> None:
    from PIL import Image

    path.mkdir()
    for i, image in enumerate(fake_images(8, 40, 48, 3)):
        Image.fromarray(image).save(path / f"{i}.png")


def test_the_pages_list_what_ci_cannot_run():
    written = [command for page in PAGES for command, _ in page_commands(page)]
    assert len(page_commands(README)) >= 10
    for marker in CANNOT_RUN:
        assert any(marker in command for command in written), f"{marker} is no longer on any page"


@pytest.fixture(scope="module")
def machine(tmp_path_factory) -> Path:
    """The Keras cache (``home``) and the users' data folder, made once for every page, as on one
    user's machine: the classifier cached beside the data is trained once, not once per page."""
    root = tmp_path_factory.mktemp("machine")
    # 640 images: enough for the README's 1 % subset (600).
    write_mnist_npz(root / "home" / "datasets", count=640)  # where a download would put it
    write_mnist_npz(root / USER_DATA.strip("/"), count=640)
    tiny_folder(root / USER_DATA.strip("/") / "my_images")
    return root


class Trained:
    """Training commands already run on an earlier page, with what they left: a command written
    the same way again, from the same state, is not trained again. A run directory it made (or a
    resume changed) is copied in instead; a run in a dated directory, which no later command can
    name, needs nothing. What a run directory holds is named by the commands that made it."""

    def __init__(self, store: Path):
        self.store, self.results = store, {}

    def key(self, args: list[str], target: str | None, made: dict[str, tuple | None], work: Path) -> tuple | None:
        """What the command (into the run directory ``target``, if it names one) starts from and
        runs; None when that is not known (a new run into a directory the page already has, a resume
        of a run made so)."""
        if any(a.startswith("resume=") for a in args):
            before = made.get(target) if target is not None else None
            return None if before is None else (*before, tuple(args))
        return None if target is not None and (work / target).exists() else (tuple(args),)

    def reuse(self, key: tuple | None, target: str | None, work: Path) -> bool:
        if key not in self.results:
            return False
        if target is not None:
            shutil.rmtree(work / target, ignore_errors=True)
            shutil.copytree(self.results[key], work / target)
        return True

    def keep(self, key: tuple | None, target: str | None, work: Path) -> None:
        if key is None:
            return
        self.results[key] = None
        if target is not None:
            self.results[key] = self.store / str(len(self.results))
            shutil.copytree(work / target, self.results[key])


def run_dir(args: list[str]) -> str | None:
    """The run directory a training command names (``resume=`` or ``hydra.run.dir=``), if any."""
    return next((a.split("=", 1)[1] for a in args if a.startswith(("resume=", "hydra.run.dir="))), None)


@pytest.fixture(scope="module")
def trained_before(tmp_path_factory) -> Trained:
    return Trained(tmp_path_factory.mktemp("trained_before"))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if page_commands(p)], ids=lambda p: str(p.relative_to(ROOT)))
def test_every_command_of_a_page_runs_as_written(page, machine, trained_before, tmp_path, capfd, monkeypatch):
    """Through the real entry points, in this process (one TensorFlow start-up for all of them)."""
    import importlib

    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.setenv("KERAS_HOME", str(machine / "home"))
    ran = []
    made: dict[str, tuple | None] = {}  # this page's run directories, by the commands that made them
    for written, words in page_commands(page):
        if any(marker in written for marker in CANNOT_RUN):
            continue
        words = in_tmp(words, machine)
        args = words[1:] + shrunk(written, words, FULL_LENGTH.get(str(page.relative_to(ROOT)), ()))
        training = words[0] == "gantrain"
        target = run_dir(args) if training else None
        key = trained_before.key(args, target, made, work) if training else None
        if not (training and trained_before.reuse(key, target, work)):
            started = time.time()
            if words[0] in SAMPLE_COMMANDS:
                monkeypatch.chdir(work)
                capfd.readouterr()
                try:
                    importlib.import_module(f"gantrain.commands.{SAMPLE_COMMANDS[words[0]]}").main(args)
                    code = 0
                except SystemExit as exit_:
                    code = exit_.code
                out, err = capfd.readouterr()
            else:
                code, out, err = gantrain_in_process(*args, cwd=work, capsys=capfd, monkeypatch=monkeypatch)
            assert code == 0, f"{page.name}: {written}\n{out[-2000:]}\n{err[-3000:]}"
            assert "Traceback" not in err, written
            if "-m" in words:  # a sweep: every job completed, whichever launcher ran them
                assert_jobs_completed(work, started, written)
            if training:
                trained_before.keep(key, target, work)
        if target is not None:
            made[target] = key  # None: made from a state not known to another page
        ran.append(written)
    assert ran


def assert_jobs_completed(work: Path, since: float, written: str) -> None:
    """The summary.csv the sweep ``written`` wrote under ``work`` (after ``since``) has a row per job,
    each completed: a job that failed in a launcher's process of its own shows there."""
    summaries = [p for p in work.rglob("summary.csv") if p.stat().st_mtime >= since]
    assert len(summaries) == 1, (written, summaries)
    rows = list(csv.DictReader(summaries[0].open()))
    assert rows and all(row["status"] == "completed" for row in rows), (written, rows)


def anchors(page: Path) -> set[str]:
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+ (.+)$", re.sub(r"```.*?```", "", page.read_text(), flags=re.S), re.M)
    return {re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-") for heading in headings}


def test_every_link_between_the_pages_resolves_and_the_readme_links_every_guide():
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)|src=\"([^\"]+)\"", page.read_text()):
            target = "".join(target)
            if re.match(r"[a-z]+:", target):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.is_file(), f"{page.relative_to(ROOT)}: {target} does not exist"
            if anchor:
                assert anchor in anchors(linked), f"{page.relative_to(ROOT)}: no heading for #{anchor} in {linked.name}"
    readme = README.read_text()
    for guide in sorted((ROOT / "docs").rglob("*.md")):
        assert f"({guide.relative_to(ROOT)})" in readme, f"README.md does not link {guide.relative_to(ROOT)}"
