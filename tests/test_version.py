"""``--version`` of the three console commands: gantrain's version and the commit it was built
from, then TensorFlow, Keras, Hydra and Python; ``gantrain``'s answer is gantrain's, not Hydra's."""

from __future__ import annotations

import importlib.metadata
import platform
import re

import pytest

import gantrain
from gantrain.commands import evaluate, export, generate
from tests.conftest import gantrain as gantrain_command


def assert_versions(out: str) -> None:
    first, *rest = out.splitlines()
    commit = r"commit ([0-9a-f]{40}(, with uncommitted changes)?|unknown)"
    assert re.fullmatch(rf"gantrain {re.escape(gantrain.__version__)} \({commit}\)", first), first
    assert rest == [
        f"TensorFlow {importlib.metadata.version('tensorflow')}",
        f"Keras {importlib.metadata.version('keras')}",
        f"Hydra {importlib.metadata.version('hydra-core')}",
        f"Python {platform.python_version()}",
    ]


def test_gantrain_version_is_gantrains_and_writes_nothing(tmp_path):
    result = gantrain_command("--version", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert_versions(result.stdout)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "main", [evaluate.main, generate.main, export.main], ids=["gantrain-eval", "gantrain-generate", "gantrain-export"]
)
def test_key_value_commands_print_the_same_versions(main, capsys):
    main(["--version"])
    out, err = capsys.readouterr()
    assert_versions(out)
    assert err == ""
