"""Registries by name: each config group (model, loss, dataset, strategy) maps a name to a function.

A group's config node is ``name`` plus that function's keyword arguments, 1:1, so the function's
signature is the group's schema: unknown keys, wrong types and unknown names fail with the key.

Usage::

    MODELS = Registry("model")

    @MODELS.register("mlp")
    def mlp(data_shape, z_dim: int = 100): ...

    generator, discriminator = MODELS.build(cfg.model, data_shape=(2,))

A group may also keep facts about each option that other modules read without calling it (a
dataset's kind, a model's speed under XLA): ``Registry("model", facts=ModelFacts())`` holds the
defaults, ``@MODELS.register("mlp", xla_on_cpu=True)`` declares an option's own, and
``MODELS.facts("mlp")`` reads them.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from collections.abc import Callable
from typing import Any, cast

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gantrain.errors import ConfigError, nearest


class Registry:
    """Name -> function for one config group."""

    def __init__(self, group: str, shared: tuple[str, ...] = (), facts: Any = None):
        self.group = group
        self.shared = shared  # keys every option takes, read by the group's own code, not the functions
        self._functions: dict[str, Callable[..., Any]] = {}
        self._default_facts = facts  # a frozen dataclass: what an option declares unless it says otherwise
        self._facts: dict[str, Any] = {}

    def register(self, name: str, **facts: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        """Add the decorated function as ``name``, with ``facts`` (fields of the group's facts)."""

        def add(fn: Callable[..., Any]) -> Callable[..., Any]:
            if name in self._functions:
                raise ValueError(f"{self.group} '{name}' is registered twice")
            self._functions[name] = fn
            self._facts[name] = dataclasses.replace(self._default_facts, **facts) if facts else self._default_facts
            return fn

        return add

    def facts(self, name: str) -> Any:
        """What ``name`` declared when it was registered (an unknown name fails as in :meth:`get`)."""
        self.get(name)
        return self._facts[name]

    def names(self) -> list[str]:
        return sorted(self._functions)

    def get(self, name: str) -> Callable[..., Any]:
        if name not in self._functions:
            raise ConfigError(
                f"{self.group}.name",
                f"unknown {self.group} '{name}'; known: {', '.join(self.names())}",
            )
        return self._functions[name]

    def options(self, node: DictConfig, context: tuple[str, ...] = (), key: str | None = None) -> dict[str, Any]:
        """The node's keys (without ``name``) checked against the function's signature.

        ``context`` names arguments the caller supplies (e.g. ``data_shape``), not the config;
        ``key``: the node's dotted key in errors, where it is not the group's (``logger.wandb``).
        """
        schema = _signature_schema(self.get(node.name), skip=context)
        given = OmegaConf.masked_copy(node, [str(k) for k in node if k != "name" and k not in self.shared])
        typed = check_against(schema, given, key or self.group, f"{self.group} '{node.name}'")
        return cast(dict[str, Any], OmegaConf.to_container(typed, resolve=True))

    def build(self, node: DictConfig, **context: Any) -> Any:
        """Call the named function with the node's options plus ``context``."""
        return self.get(node.name)(**context, **self.options(node, tuple(context)))


def check_against(schema: type, node: DictConfig | dict[str, Any], prefix: str, owner: str) -> DictConfig:
    """``node`` merged into the dataclass ``schema``; a bad key or value is a ConfigError naming
    ``prefix.key``."""
    try:
        return cast(DictConfig, OmegaConf.merge(OmegaConf.structured(schema), node))
    except OmegaConfBaseException as err:
        key = ".".join(part for part in (prefix, err.full_key) if part)
        if isinstance(err, KeyError) or "not in struct" in str(err):
            hint = (
                nearest(
                    str(err.key),
                    [f.name for f in dataclasses.fields(schema)],
                    f"{prefix}." if prefix else "",
                    or_list=False,
                )
                if err.full_key == err.key
                else ""
            )
            raise ConfigError(key, f"not an option of {owner}{hint}") from None
        raise ConfigError(key, str(err.msg).splitlines()[0]) from None


def _signature_schema(fn: Callable[..., Any], skip: tuple[str, ...]) -> type:
    """A dataclass with one field per keyword argument of ``fn`` (type and default included)."""
    hints = typing.get_type_hints(fn)
    fields = []
    for param in inspect.signature(fn).parameters.values():
        if param.name in skip:
            continue
        if param.default is inspect.Parameter.empty:
            raise TypeError(f"{fn.__name__}: config argument '{param.name}' needs a default")
        default: Any = param.default
        if isinstance(default, (list, tuple, dict)):
            default = dataclasses.field(default_factory=functools.partial(type(default), default))  # a copy per call
        fields.append((param.name, hints.get(param.name, Any), default))
    return dataclasses.make_dataclass(f"{fn.__name__}_options", fields)
