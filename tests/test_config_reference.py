"""docs/reference/configuration.md is what scripts/config_reference.py makes of configs/*.yaml as they
are: a default or a comment changed in a YAML file without running the script fails here."""

from __future__ import annotations

import importlib.util
import re
import shutil
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "config_reference.py"


def load_script():
    spec = importlib.util.spec_from_file_location("config_reference", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_committed_reference_is_what_the_configs_give():
    script = load_script()
    assert script.REFERENCE.read_text() == script.render(), (
        "docs/reference/configuration.md is out of date: run python scripts/config_reference.py"
    )


def test_the_reference_follows_a_changed_comment_and_check_mode_refuses_a_stale_file(tmp_path, monkeypatch):
    script = load_script()
    configs = tmp_path / "configs"
    shutil.copytree(script.config_dir(), configs)
    mlp = configs / "model" / "mlp.yaml"
    mlp.write_text(re.sub(r"^z_dim: .*$", "z_dim: 64   # a comment written for this test", mlp.read_text(), flags=re.M))
    monkeypatch.setattr(script, "config_dir", lambda: configs)
    text = script.render()
    assert "| `model.z_dim` | `64` | a comment written for this test |" in text
    stale = tmp_path / "configuration.md"
    stale.write_text("an old reference\n")
    monkeypatch.setattr(script, "REFERENCE", stale)
    assert script.main(["--check"]) == 1
    assert stale.read_text() == "an old reference\n"  # --check writes nothing
    assert script.main([]) == 0 and script.main(["--check"]) == 0
