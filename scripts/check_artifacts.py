"""Build the release artifacts and check them as a user meets them.

Usage (from the repository root, with any Python 3.11+, the project installed or not):
``python scripts/check_artifacts.py [--all-tests] [--keep]``

0. the build tools: the dev extra's ``build`` and ``twine`` where this Python has them, else a
   virtualenv of their own with them (so CI starts this check before it installs anything);
1. ``python -m build``: the sdist, then the wheel built from the unpacked sdist;
2. ``twine check``: their metadata (the README renders as the long description);
3. their contents: the wheel holds gantrain/configs/, the LICENSE and the commit it was built from,
   and no tests; the sdist holds tests/ with tests/fixtures/, configs/, docs/, LICENSE, CHANGELOG.md;
4. a fresh virtualenv with the wheel and pytest installed (the whole test extra for ``--all-tests``;
   pip's own cache is reused and nothing is byte-compiled ahead of use: about a minute, most of it
   unpacking TensorFlow); from
   an empty directory, ``gantrain --version`` names pyproject.toml's version and this checkout's
   commit, the README's toy demo runs as written, and ``gantrain-eval`` reads the run it made;
5. the unpacked sdist's tests, against the sdist's own code, configs and fixtures. By default a
   subset of a few minutes (:data:`SUBSET`: the config files against the registries, the console
   commands' --version and --help, the losses, a run saved by gantrain 0.1.0 resuming);
   ``--all-tests`` runs all of them with the project's pytest settings (about 10 minutes on 2 cores).
   They run side by side with the toy demo of 4.

One line per check, ``ok`` or ``FAILED`` with what went wrong; the exit code is 1 if any failed.
Everything happens in a temporary directory, removed at the end unless ``--keep``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import venv
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from email.parser import Parser
from importlib.util import find_spec
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# The sdist's tests run by default: each checks that something the sdist must carry works.
SUBSET = [
    "tests/test_config.py",
    "tests/test_version.py",
    "tests/test_losses.py",
    "tests/test_cli.py::test_help_lists_groups_and_options_from_any_directory",
    "tests/test_reliability.py::test_a_run_made_by_gantrain_0_1_0_resumes",
]

# What the README's toy demo starts with: the command is taken from the README (or docs/) as written.
TOY_START = "gantrain experiment=ring8 train.steps="


class CheckFailed(Exception):
    """A check that did not hold; its message says what was found."""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--all-tests", action="store_true", help="run the sdist's whole test suite, not the subset")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory and print its path")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="gantrain-artifacts-"))
    checks = Checks()
    try:
        run_checks(checks, work, args.all_tests)
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{checks.count} checks, {checks.failed} failed")
    return 1 if checks.failed else 0


def run_checks(checks: Checks, work: Path, all_tests: bool) -> None:
    commit = run(["git", "rev-parse", "HEAD"], ROOT).strip()
    found: dict[str, str] = {}  # the Python that has them, once the check has found or made it
    if not checks.run(
        "build tools: the dev extra's build and twine", lambda: found.setdefault("python", build_tools(work))
    ):
        return
    python = found["python"]
    dist = work / "dist"
    if not checks.run("python -m build: sdist and wheel", lambda: build(python, dist)):
        return  # nothing to check without them
    (sdist,), (wheel,) = dist.glob("*.tar.gz"), dist.glob("*.whl")
    version = wheel.name.split("-")[1]  # pyproject.toml's, as the build wrote it
    checks.run(
        "twine check: the metadata of both",
        lambda: run([python, "-m", "twine", "check", "--strict", str(sdist), str(wheel)], work),
    )
    checks.run("wheel: gantrain/configs, LICENSE and the build commit; no tests", lambda: check_wheel(wheel, commit))
    checks.run("sdist: tests, tests/fixtures, configs, docs, LICENSE, CHANGELOG.md", lambda: check_sdist(sdist))
    env_dir = work / "venv"
    what = "its test extra" if all_tests else "pytest"
    if not checks.run(f"a fresh virtualenv with the wheel and {what}", lambda: install(env_dir, wheel, all_tests)):
        return
    empty = work / "empty"
    empty.mkdir()
    checks.run("gantrain --version from an empty directory", lambda: check_version(env_dir, empty, version, commit))
    source = work / "sdist"
    with tarfile.open(sdist) as archive:
        archive.extractall(source, filter="data")
    # Side by side: the toy run and the tests are each mostly one busy core, and neither reads
    # what the other writes (the toy run's directory is under empty/, the tests' under /tmp).
    checks.run_together(
        ("the README's toy demo, then gantrain-eval of its run", lambda: toy_demo(env_dir, empty)),
        (
            f"the sdist's tests ({'all' if all_tests else 'subset; --all-tests for all'})",
            lambda: sdist_tests(env_dir, source / f"gantrain-{version}", all_tests),
        ),
    )


class Checks:
    """Runs each check, prints its line, counts the failures."""

    def __init__(self) -> None:
        self.count = self.failed = 0

    def run(self, name: str, check: Callable[[], str | None]) -> bool:
        return self.report(name, self.timed(check))

    def run_together(self, *named: tuple[str, Callable[[], str | None]]) -> None:
        """Each check in a thread of its own, all at once; their lines in the order given."""
        with ThreadPoolExecutor(len(named)) as pool:
            outcomes = [pool.submit(self.timed, check) for _, check in named]
        for (name, _), outcome in zip(named, outcomes, strict=True):
            self.report(f"{name} (run beside the others)", outcome.result())

    @staticmethod
    def timed(check: Callable[[], str | None]) -> tuple[str | None | CheckFailed, float]:
        start = time.monotonic()
        try:
            return check(), time.monotonic() - start
        except CheckFailed as err:
            return err, time.monotonic() - start

    def report(self, name: str, outcome: tuple[str | None | CheckFailed, float]) -> bool:
        detail, seconds = outcome
        self.count += 1
        if isinstance(detail, CheckFailed):
            self.failed += 1
            print(f"FAILED {name} ({seconds:.0f} s): {detail}", flush=True)
            return False
        note = (
            f": {detail.strip()}" if isinstance(detail, str) and detail.strip() and "\n" not in detail.strip() else ""
        )
        print(f"ok     {name} ({seconds:.0f} s){note}", flush=True)
        return True


def run(command: list[str], cwd: Path, env: dict | None = None) -> str:
    """``command``'s stdout; a non-zero exit is a CheckFailed holding the end of its output."""
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise CheckFailed(f"{shlex.join(command)} exited {result.returncode}:\n{tail}")
    return result.stdout


def build_tools(work: Path) -> str:
    """A Python with the dev extra's ``build`` and ``twine``: this one if it has them, else a
    virtualenv of their own under ``work`` with the versions pyproject.toml's dev extra names."""
    if find_spec("build") and find_spec("twine"):
        return sys.executable
    try:
        import tomllib
    except ModuleNotFoundError as err:  # Python 3.10
        raise CheckFailed("this Python has neither build and twine nor tomllib: pip install -e '.[dev]'") from err
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    env_dir = work / "tools"
    venv.create(env_dir, with_pip=True)
    wanted = [r for r in dev if re.match(r"(build|twine)\b", r)]
    run([str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", *wanted], env_dir, clean_env(env_dir))
    return str(env_dir / "bin" / "python")


def build(python: str, dist: Path) -> str:
    run([python, "-m", "build", "--outdir", str(dist), str(ROOT)], ROOT)
    return " ".join(sorted(path.name for path in dist.iterdir()))


def check_wheel(wheel: Path, commit: str) -> str:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        record = json.loads(archive.read("gantrain/_build.json")) if "gantrain/_build.json" in names else {}
    missing = [n for n in ("gantrain/configs/config.yaml", "gantrain/configs/model/dcgan.yaml") if n not in names]
    if not any(n.endswith(".dist-info/licenses/LICENSE") for n in names):
        missing.append("LICENSE")
    tests = [n for n in names if n.startswith("tests/") or "/tests/" in n]
    if missing or tests or record.get("commit") != commit:
        raise CheckFailed(
            f"missing {missing}, tests {tests[:3]}, recorded commit {record.get('commit')} (HEAD {commit})"
        )
    configs = sum(n.startswith("gantrain/configs/") for n in names)
    return f"{len(names)} files, {configs} configs" + (" (built from uncommitted changes)" if record["dirty"] else "")


def check_sdist(sdist: Path) -> str:
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
    # Every file the checkout tracks under tests/ (fixtures included), configs/ and docs/, and the
    # top-level texts: what the sdist's tests and its readers need.
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "tests", "configs", "docs"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    needed = [*tracked, "LICENSE", "CHANGELOG.md", "README.md"]
    missing = [n for n in needed if n not in names]
    if missing:
        raise CheckFailed(f"missing {missing}")
    return f"{len(names)} files, {sum(n.startswith('tests/') for n in names)} under tests/"


def clean_env(env_dir: Path) -> dict[str, str]:
    """The environment of a user who activated the new virtualenv: nothing of this checkout on the path."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env["PATH"] = f"{env_dir / 'bin'}{os.pathsep}{env['PATH']}"
    env["VIRTUAL_ENV"] = str(env_dir)
    return env


def install(env_dir: Path, wheel: Path, all_tests: bool) -> None:
    """The wheel with its test extra (all of it for ``--all-tests``; else the pytest packages the
    subset needs: the trackers and converters the extra adds take a minute to install)."""
    venv.create(env_dir, with_pip=True)
    # the test extra as the wheel's metadata gives it
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        requires = Parser().parsestr(archive.read(metadata).decode()).get_all("Requires-Dist") or []
    extra = [r.split(";")[0].strip() for r in requires if re.search(r"extra == .test.", r)]
    wanted = [f"{wheel}[test]"] if all_tests else [str(wheel), *(r for r in extra if r.startswith("pytest"))]
    run(
        [str(env_dir / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile", *wanted],
        env_dir,
        clean_env(env_dir),
    )


def check_version(env_dir: Path, cwd: Path, version: str, commit: str) -> str:
    out = run(["gantrain", "--version"], cwd, clean_env(env_dir))
    first = out.splitlines()[0] if out else ""
    if not first.startswith(f"gantrain {version} (commit {commit}") or len(out.splitlines()) != 5:
        raise CheckFailed(f"expected 'gantrain {version} (commit {commit}...' and four more lines, got:\n{out}")
    if any(cwd.iterdir()):
        raise CheckFailed(f"--version wrote {sorted(p.name for p in cwd.iterdir())}")
    return " | ".join(out.splitlines())


def toy_command() -> list[str]:
    """The README's toy demo as written: the first shell command in README.md or docs/*.md that
    starts with :data:`TOY_START` (lines joined where they end in a backslash)."""
    for page in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), re.DOTALL):
            for command in block.replace("\\\n", " ").splitlines():
                if command.startswith(TOY_START):
                    return shlex.split(command.split("  #")[0])
    raise CheckFailed(f"no command starting '{TOY_START}' in README.md or docs/")


def toy_demo(env_dir: Path, cwd: Path) -> str:
    command = toy_command()
    run(command, cwd, clean_env(env_dir))
    run_dir = next(a.split("=", 1)[1] for a in command if a.startswith("hydra.run.dir="))
    result = json.loads(run(["gantrain-eval", f"run_dir={run_dir}"], cwd, clean_env(env_dir)).splitlines()[-1])
    metrics = {name: value for name, value in result.items() if name != "protocol"}
    return f"{shlex.join(command)} -> gantrain-eval {metrics}"


def sdist_tests(env_dir: Path, source: Path, all_tests: bool) -> str:
    selection = [] if all_tests else ["-n", "0", *SUBSET]
    out = run(
        [str(env_dir / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection],
        source,
        clean_env(env_dir),
    )
    return out.strip().splitlines()[-1]


if __name__ == "__main__":
    sys.exit(main())
