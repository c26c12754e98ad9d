"""What a command's config may make Hydra call. Hydra imports and calls whatever a ``_target_`` names
(callbacks, the launcher, the sweeper and its sampler), and Python's logging set-up whatever a
handler's ``class`` or ``()`` names: an override naming ``builtins.open`` there would empty any file.
Only gantrain's own callback and the plugins its configs use are allowed; the check runs on the
composed config of every job, before Hydra reads it.

Usage: ``check_targets(compose("config", overrides, return_hydra_config=True))`` raises a ConfigError
naming the key.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from omegaconf import DictConfig, OmegaConf

from gantrain.errors import ConfigError

OPTUNA_SAMPLERS = ("GridSampler", "TPESampler", "RandomSampler", "CmaEsSampler", "NSGAIISampler", "MOTPESampler")
LOGGING = (
    "logging.StreamHandler",
    "logging.FileHandler",
    "logging.NullHandler",
    "logging.Formatter",
    "logging.Filter",
    "colorlog.ColoredFormatter",
)

# Where a callable may be named (the dotted key of the node holding it, with wildcards), which key
# names it, and what it may be; nothing may be named anywhere else.
ALLOWED: list[tuple[str, str, str, tuple[str, ...]]] = [
    ("hydra.callbacks.*", "_target_", "a callback gantrain runs", ("gantrain.commands.sweep_summary.SweepSummary",)),
    (
        "hydra.launcher",
        "_target_",
        "a launcher gantrain's configs use",
        (
            "hydra._internal.core_plugins.basic_launcher.BasicLauncher",
            "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher",
            "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher",
        ),
    ),
    (
        "hydra.sweeper",
        "_target_",
        "a sweeper gantrain's configs use",
        (
            "hydra._internal.core_plugins.basic_sweeper.BasicSweeper",
            "hydra_plugins.hydra_optuna_sweeper.optuna_sweeper.OptunaSweeper",
        ),
    ),
    ("hydra.sweeper.sampler", "_target_", "an Optuna sampler", tuple(f"optuna.samplers.{s}" for s in OPTUNA_SAMPLERS)),
    ("hydra.*_logging.*", "class", "a standard logging class", LOGGING),
    ("hydra.*_logging.*", "()", "a standard logging class", LOGGING),
]
NAMING_KEYS = {key for _, key, _, _ in ALLOWED}


def check_targets(cfg: DictConfig) -> None:
    """Refuse a config in which a key names a callable that is not allowed where it stands."""
    for where, key, value in named_callables(OmegaConf.to_container(cfg, resolve=False)):
        rules = [rule for rule in ALLOWED if rule[1] == key and fnmatchcase(where, rule[0])]
        if key == "_target_" or rules:  # a "class" key outside logging names no callable
            dotted = f"{where}.{key}" if where else key
            if not rules:
                raise ConfigError(dotted, f"{value} is not allowed: gantrain calls nothing its config names here")
            _, _, what, allowed = rules[0]
            if value not in allowed:
                raise ConfigError(dotted, f"{value} is not {what} (allowed: {', '.join(allowed)})")


def named_callables(node: Any, where: str = ""):
    """(dotted key of the node, naming key, value) of every ``_target_``, ``class`` and ``()``."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        if key in NAMING_KEYS and not isinstance(value, (dict, list)):
            yield where, key, value
        else:
            yield from named_callables(value, f"{where}.{key}" if where else str(key))


def unswept(overrides: list[str]) -> list[str]:
    """The overrides that every job of a sweep composes with (those that are not sweeps), for a
    sweeper whose syntax gantrain does not split into jobs; a swept key that names a callable is
    refused, since no one composition holds its values."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    kept = []
    for override in OverridesParser.create().parse_overrides(overrides):
        if not override.is_sweep_override():
            assert override.input_line is not None  # parsed from this text
            kept.append(override.input_line)
        elif override.key_or_group.rsplit(".", 1)[-1] in NAMING_KEYS:
            raise ConfigError(override.key_or_group, "names code to call; it cannot be swept")
    return kept
