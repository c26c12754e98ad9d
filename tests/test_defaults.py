"""Every default is written where users read it (the commented YAML behind ``gantrain --help``, a
command's ``--help``) and where the code types it (a dataclass, a function's signature): these
tests hold each pair to the same keys and the same values, so neither can drift alone."""

import dataclasses
import inspect
from enum import Enum
from typing import Any

import pytest
from omegaconf import OmegaConf

from gantrain.commands.evaluate import EvalCommand
from gantrain.commands.export import ExportCommand, export
from gantrain.commands.generate import GenerateCommand, generate
from gantrain.config import TrainConfig, config_dir
from gantrain.data import DATASETS
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.options import EvalConfig, MetricOptions, SamplingOptions
from gantrain.models import MODELS
from gantrain.registry import _signature_schema
from gantrain.run.loggers import LOGGERS
from gantrain.run.strategies import STRATEGIES
from gantrain.training.gon import AUXILIARIES
from gantrain.training.losses import LOSSES

REGISTRIES = [MODELS, LOSSES, DATASETS, STRATEGIES, AUXILIARIES, LOGGERS]
# What the callers pass, not the config.
CONTEXT = {MODELS: ("data_shape", "num_classes", "class_head"), LOGGERS: ("opening",)}


def schema_defaults(schema: type) -> dict[str, Any]:
    """A dataclass's defaults as the YAML spells them (an enum by its value)."""
    defaults = {}
    for f in dataclasses.fields(schema):
        value = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if dataclasses.is_dataclass(value):  # a sub-node (train.schedule): its keys as the YAML has them
            value = schema_defaults(type(value))
        defaults[f.name] = value.value if isinstance(value, Enum) else value
    return defaults


def signature_defaults(fn) -> dict[str, Any]:
    """A function's keyword defaults (its arguments without one left out)."""
    return {
        name: p.default
        for name, p in inspect.signature(fn).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def disagreements(typed: dict[str, Any], written: dict[str, Any], where: str = "the YAML") -> list[str]:
    """What differs between the schema's defaults and those ``written`` in ``where``: keys only one
    has, values (and their types: 1 is not 1.0 to a typed key) that are not the same."""
    problems = [f"{key}: only in the schema" for key in typed.keys() - written.keys()]
    problems += [f"{key}: only in {where}" for key in written.keys() - typed.keys()]
    for key in typed.keys() & written.keys():
        a, b = typed[key], written[key]
        if a != b or type(a) is not type(b):
            problems.append(f"{key}: {a!r} in the schema, {b!r} in {where}")
    return sorted(problems)


@pytest.mark.parametrize("node, schema", [("train", TrainConfig), ("eval", EvalConfig)])
def test_config_yaml_nodes_have_their_schemas_keys_and_defaults(node, schema):
    written = OmegaConf.to_container(OmegaConf.load(config_dir() / "config.yaml")[node])
    assert disagreements(schema_defaults(schema), written) == []


@pytest.mark.parametrize("registry", REGISTRIES, ids=lambda r: r.group)
def test_group_yaml_files_have_their_functions_keys_and_defaults(registry):
    """Each option file lists every argument of its function with the function's default (the
    ``shared`` keys, read by the group's own code, are left to that code); a logger's sit under its
    name, so that several loggers compose side by side."""
    context = CONTEXT.get(registry, ())
    for path in sorted((config_dir() / registry.group).glob("*.yaml")):
        written = OmegaConf.to_container(OmegaConf.load(path))
        if registry is LOGGERS:
            assert list(written) == [path.stem], path.name
            written = written[path.stem]
        for key in ("name", *registry.shared):
            written.pop(key, None)
        typed = schema_defaults(_signature_schema(registry.get(path.stem), skip=context))
        assert disagreements(typed, written) == [], path.name


@pytest.mark.parametrize(
    "command, function, options",
    [(EvalCommand, evaluate, MetricOptions), (GenerateCommand, generate, SamplingOptions)],
    ids=["gantrain-eval", "gantrain-generate"],
)
def test_command_keys_have_their_functions_defaults(command, function, options):
    """``--help`` shows the command dataclass's defaults; the Python function is what runs: its
    named arguments (those without a default are the command's required keys), and as keywords
    the fields of ``options``, whose defaults the command inherits."""
    named = [name for name, p in inspect.signature(function).parameters.items() if p.kind is not p.VAR_KEYWORD]
    assert schema_defaults(command).keys() == set(named) | schema_defaults(options).keys()
    written = signature_defaults(function)
    typed = {key: value for key, value in schema_defaults(command).items() if key in written}
    assert disagreements(typed, written, function.__name__) == []
    assert issubclass(command, options)


def test_export_keys_have_its_defaults():
    """gantrain-export's keys are export()'s arguments, with the same defaults (it shares no options)."""
    assert schema_defaults(ExportCommand).keys() == set(inspect.signature(export).parameters)
    written = signature_defaults(export)
    typed = {key: value for key, value in schema_defaults(ExportCommand).items() if key in written}
    assert disagreements(typed, written, "export") == []


def test_generate_shares_the_measuring_defaults():
    shared = schema_defaults(MetricOptions).keys() & schema_defaults(GenerateCommand).keys()
    assert shared >= {
        "sampling",
        "drs_percentile",
        "mh_steps",
        "dot_steps",
        "dot_lr",
        "dot_k",
        "dot_k_fraction",
        "driven_generator",
    }
    typed = {key: schema_defaults(MetricOptions)[key] for key in shared if key != "num_samples"}
    written = {key: schema_defaults(GenerateCommand)[key] for key in typed}
    assert disagreements(typed, written, "GenerateCommand") == []
