"""The ``key=value`` console commands beside ``gantrain`` (``gantrain-eval``, ``gantrain-generate``,
``gantrain-export``): their keys are a dataclass's fields, parsed and checked by OmegaConf, listed by ``--help``.

Each key is an argument of the function the command runs, by the same name.

Usage: ``result = run_command("gantrain-eval", EvalCommand, evaluate, usage)`` (None after --help or --version).
"""

from __future__ import annotations

import dataclasses
import sys
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from omegaconf import OmegaConf

from gantrain.commands import console
from gantrain.commands.version import version_text
from gantrain.errors import ConfigError, GantrainError, file_error
from gantrain.registry import check_against


def run_command(
    program: str, schema: type, action: Callable[..., Any], usage: Callable[[], str], argv: list[str] | None = None
) -> Any:
    """The console entry point's work: ``--version``, a quiet console, ``--help``, the keys parsed and passed to
    ``action`` by name; a bad input or a file-system fault ends with one line on stderr and exit code 2."""
    args = sys.argv[1:] if argv is None else argv
    if "--version" in args:
        print(version_text())
        return None
    console.quiet_tensorflow()
    if any(a in ("-h", "--help") for a in args):
        print(usage())
        return None
    try:
        try:
            return action(**dataclasses.asdict(parse(schema, args, program)))
        except OSError as err:
            raise file_error(err) from None
    except GantrainError as err:
        print(f"{program}: error: {err}", file=sys.stderr)
        sys.exit(2)


def parse(schema: type, args: list[str], program: str):
    """The command's options from ``args``: an instance of ``schema``; its required ``run_dir``
    must be given. A bad argument is a ConfigError naming it."""
    bad = [a for a in args if "=" not in a]
    if bad:
        raise ConfigError(bad[0], f"expected key=value (keys: {', '.join(f.name for f in ordered_keys(schema))})")
    typed = check_against(schema, OmegaConf.from_dotlist(args), "", program)
    if OmegaConf.is_missing(typed, "run_dir"):
        raise ConfigError("run_dir", f"required: {program} run_dir=<run directory>")
    return OmegaConf.to_object(typed)


def ordered_keys(schema: type) -> list[dataclasses.Field]:
    """The command's keys: the required ``run_dir`` first, then the command's own keys, then those
    it shares (declared by the classes it extends, the nearest first)."""
    declared: dict[str, int] = {}  # where each key is declared: 0 the schema, 1 its parent ...
    for distance, cls in enumerate(schema.__mro__):
        for name in vars(cls).get("__annotations__", {}):
            declared.setdefault(name, distance)
    return sorted(fields(schema), key=lambda f: (f.name != "run_dir", declared[f.name]))


def keys_help(schema: type) -> str:
    """One line per key (:func:`ordered_keys`): its default and its ``help``."""
    return "\n".join(
        f"  {f.name}={'<dir>' if f.name == 'run_dir' else f.default}".ljust(32) + f.metadata["help"]
        for f in ordered_keys(schema)
    )


def usage_text(synopsis: str, doc: str, schema: type, ending: str) -> str:
    """A command's ``--help``: its synopsis, the third paragraph of its module docstring ``doc``
    (what it does), every key of ``schema`` with its default, and ``ending`` (what it prints)."""
    return (
        f"Usage: {synopsis}\n\n{doc.split(chr(10) * 2)[2].replace('``', '')}\n\nKeys:\n{keys_help(schema)}\n\n{ending}"
    )
