"""What a run ran on: package versions, the source commit, Python, and the devices.

Written to ``<run>/environment.jsonl`` (one line each time the run starts or resumes) and to
TensorBoard as text, so a result can be traced to the code and machine that made it.

The commit: read live from git when gantrain runs from a checkout (an editable install), else the
one recorded in ``gantrain/_build.json`` when the wheel was built from a checkout.

Usage: ``record = describe(strategy)``.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import shlex
import subprocess
import sys
from pathlib import Path

PACKAGES = ("gantrain", "tensorflow", "keras", "hydra-core", "omegaconf", "numpy")


def describe(devices: list[str]) -> dict:
    """Versions, commit, Python, platform, and the ``devices`` the run computes on."""
    record: dict = {name: package_version(name) for name in PACKAGES}
    record.update(source_commit())
    record.update(
        {
            "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu": _cpu_name(),
            "devices": devices,
            "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        }
    )
    return record


def source_commit() -> dict:
    """``{"commit": sha, "dirty": bool}`` of the source gantrain runs from, or ``{}`` if unknown."""
    root = Path(__file__).resolve().parents[2]
    if (root / ".git").exists():
        try:
            sha = _git(root, "rev-parse", "HEAD")
            return {"commit": sha, "dirty": bool(_git(root, "status", "--porcelain", "--untracked-files=no"))}
        except (OSError, subprocess.CalledProcessError):
            return {}
    built = Path(__file__).resolve().parents[1] / "_build.json"
    return json.loads(built.read_text()) if built.is_file() else {}


def _git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=10
    ).stdout.strip()


def package_version(package: str) -> str | None:
    """The installed version of the distribution ``package``, or None."""
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cpu_has_bfloat16() -> bool:
    """Whether this CPU computes in bfloat16 natively (AVX-512 BF16 or AMX); elsewhere TensorFlow
    emulates it, far slower than float32."""
    try:
        flags = next(line for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags"))
    except (OSError, StopIteration):
        return True  # not Linux: no way to tell here, so no warning
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))
