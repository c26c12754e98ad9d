"""Build hook: records the git commit a wheel or sdist is built from in ``gantrain/_build.json``, so
that runs of an installed gantrain can name the exact source (``gantrain.run.environment``); a
wheel built from an sdist (as ``python -m build`` does) keeps the sdist's record."""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

from hatchling.builders.hooks.plugin.interface import BuildHookInterface


class CustomBuildHook(BuildHookInterface):
    def initialize(self, version: str, build_data: dict) -> None:
        record = {}
        try:
            git = ["git", "-C", self.root]
            record["commit"] = subprocess.run(
                [*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True
            ).stdout.strip()
            status = subprocess.run(
                [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True, check=True
            ).stdout
            record["dirty"] = bool(status.strip())
        except (OSError, subprocess.CalledProcessError):
            # Not a checkout: an unpacked sdist passes on the record its own build made (.gitignore,
            # which hatch obeys, would leave it out of the wheel).
            recorded = Path(self.root) / "gantrain" / "_build.json"
            if recorded.is_file():
                build_data["force_include"][str(recorded)] = "gantrain/_build.json"
            return
        path = Path(tempfile.mkdtemp()) / "_build.json"
        path.write_text(json.dumps(record) + "\n")
        build_data["force_include"][str(path)] = "gantrain/_build.json"
