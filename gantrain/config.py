"""The ``train`` node's schema and range checks, and where the YAML config groups live.

Usage: ``options = check_train(cfg.train)`` -> typed :class:`TrainConfig`, or a ConfigError naming
the key.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, Callable, Optional

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gantrain.errors import ConfigError
from gantrain.registry import check_against


def config_dir() -> Path:
    """configs/ as installed inside the package, else the top-level configs/ of a source tree."""
    here = Path(__file__).resolve().parent
    installed = here / "configs"
    return installed if installed.is_dir() else here.parent / "configs"


class NanPolicy(Enum):
    stop = "stop"  # stop with a message; the last good checkpoint is kept
    rollback = "rollback"  # restore the last good checkpoint, lower both learning rates, go on


class Precision(Enum):
    float32 = "float32"
    mixed_bfloat16 = "mixed_bfloat16"  # bfloat16 compute, float32 weights; no loss scaling needed
    mixed_float16 = "mixed_float16"  # float16 compute with dynamic loss scaling (GPUs)


@dataclass
class TrainConfig:
    # Defaults are Algorithm 1 of the WGAN-GP paper (Gulrajani et al. 2017): alpha=1e-4,
    # beta1=0, beta2=0.9, n_critic=5.
    steps: int = 10000  # generator updates
    batch_size: int = 64  # global batch, real and fake alike
    n_critic: int = 5  # critic updates per generator update
    seed: int = 0
    g_lr: float = 1e-4
    d_lr: float = 1e-4  # also the auxiliary network's (aux=gon)
    beta1: float = 0.0
    beta2: float = 0.9
    lr_decay: bool = False  # every learning rate decays linearly to zero at train.steps
    # Decay of a moving average of G's weights used for samples and evaluation; null: off.
    ema: Optional[float] = None
    # Top-k training (Sinha et al. 2020): G learns from the share of its samples that D scores
    # best, falling from the whole batch by top_k_decay per epoch to top_k; 1: every sample.
    top_k: float = 1.0
    top_k_decay: float = 0.99
    # DiffAugment (Zhao et al. 2020): transforms of every image D sees, from color, translation,
    # cutout; empty: none. Each is applied with probability augment_p per image, or auto (ADA).
    augment: list[str] = field(default_factory=list)
    augment_p: Any = 1.0
    # PacGAN (Lin et al. 2018): D judges packs of this many samples at once; batch_size counts
    # samples, so D sees batch_size / pack packs per batch. 1: one sample at a time.
    pack: int = 1
    sample_every: int = 500
    checkpoint_every: int = 1000
    log_every: int = 100
    keep_checkpoints: int = 3  # rolling checkpoints kept on disk
    # Fixed-noise samples per preview; null: 64 (an 8x8 grid) for images, 1024 for 2-D points.
    num_samples: Optional[int] = None
    precision: Precision = Precision.float32
    steps_per_call: int = 1  # generator steps per compiled call (fewer trips to Python)
    jit_compile: bool = False  # XLA: faster for small mlp models, slower for conv models on a CPU
    # What a non-finite loss or weight triggers.
    nan_policy: NanPolicy = NanPolicy.stop
    rollback_lr_factor: float = 0.1  # learning rates are multiplied by this at each rollback
    max_rollbacks: int = 3  # then stop as with nan_policy=stop


def _at_least(low: float) -> tuple[Callable[[float], bool], str]:
    return (lambda v: v >= low), f"must be >= {low:g}"


_POSITIVE = ((lambda v: v > 0), "must be > 0")
_BETA = ((lambda v: 0 <= v < 1), "must be in [0, 1)")
_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "steps": _at_least(1),
    "batch_size": _at_least(1),
    "n_critic": _at_least(1),
    "seed": _at_least(0),
    "g_lr": _POSITIVE,
    "d_lr": _POSITIVE,
    "beta1": _BETA,
    "beta2": _BETA,
    "ema": ((lambda v: 0 < v < 1), "must be in (0, 1)"),
    "top_k": ((lambda v: 0 < v <= 1), "must be in (0, 1]"),
    "top_k_decay": ((lambda v: 0 < v <= 1), "must be in (0, 1]"),
    "sample_every": _at_least(1),
    "checkpoint_every": _at_least(1),
    "log_every": _at_least(1),
    "keep_checkpoints": _at_least(1),
    "num_samples": _at_least(1),
    "steps_per_call": _at_least(1),
    "pack": _at_least(1),
    "rollback_lr_factor": ((lambda v: 0 < v < 1), "must be in (0, 1)"),
    "max_rollbacks": _at_least(0),
}

# The keys a resumed run may change: how long it runs and how often it reports.
RESUMABLE_KEYS = ("train.steps", "train.sample_every", "train.checkpoint_every", "train.log_every", "eval.every")


def check_train(node: DictConfig) -> TrainConfig:
    """Type- and range-check the ``train`` node."""
    options: TrainConfig = OmegaConf.to_object(check_against(TrainConfig, node, "train", "train"))
    for field in fields(TrainConfig):
        value = getattr(options, field.name)
        ok, rule = _RULES.get(field.name, (None, ""))  # enums are limited by their type
        if ok is not None and value is not None and not ok(value):
            raise ConfigError(f"train.{field.name}", f"{rule}, got {value}")
    if options.augment:
        from gantrain.training.augment import (
            TRANSFORMS,  # TensorFlow, only when asked for
        )

        for name in options.augment:
            if name not in TRANSFORMS:
                raise ConfigError("train.augment", f"unknown transform '{name}'; known: {', '.join(TRANSFORMS)}")
    options.augment_p = _probability_or_auto(options.augment_p)
    if options.batch_size % options.pack:
        raise ConfigError("train.pack", f"must divide train.batch_size ({options.batch_size}) into whole packs, "
                                        f"got {options.pack}")
    return options


def _probability_or_auto(value: Any) -> float | str:
    if value == "auto":
        return value
    try:
        p = float(value)
    except (TypeError, ValueError):
        p = None
    if isinstance(value, bool) or p is None or not 0 <= p <= 1:
        raise ConfigError("train.augment_p", f"must be in [0, 1] or auto, got {value}")
    return p


def resolve(cfg: DictConfig) -> None:
    """Replace every interpolation in ``cfg`` by its value, in place: a run is what it ran with, so
    the config it saves (and a resume reloads) holds ``${oc.env:LR}``'s value, read once. An
    interpolation that cannot be resolved is a ConfigError naming its key."""
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as err:
        key = next((key for key in _leaf_keys(OmegaConf.to_container(cfg))
                    if _fails_to_resolve(cfg, key)), "config")
        raise ConfigError(key, f"cannot be resolved ({str(err).splitlines()[0]})") from None


def _leaf_keys(node: Any, prefix: str = "") -> list[str]:
    if isinstance(node, dict):
        return [key for name, child in node.items() for key in _leaf_keys(child, f"{prefix}{name}.")]
    return [prefix.rstrip(".")]


def _fails_to_resolve(cfg: DictConfig, key: str) -> bool:
    try:
        OmegaConf.select(cfg, key, throw_on_resolution_failure=True)
    except OmegaConfBaseException:
        return True
    return False


def check_top_level(cfg: DictConfig, overrides: list[str]) -> None:
    """Refuse top-level keys that no config defines (``+modle=mlp`` would otherwise be accepted
    and ignored), naming the nearest known key."""
    base = OmegaConf.load(config_dir() / "config.yaml")
    groups = {p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra"}
    known = (set(base) - {"defaults"}) | groups | {"hydra"}
    for key in cfg:
        if key not in known:
            near = difflib.get_close_matches(str(key), sorted(known), n=1)
            hint = f"; did you mean {near[0]}?" if near else f"; known: {', '.join(sorted(known - {'hydra'}))}"
            raise ConfigError(str(key), f"no config defines this key{hint}")


def check_group_overrides(overrides: list[str]) -> None:
    """``aux=null`` (a group set to null) is a Hydra ValueError; say how to drop a group instead."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    groups = {p.name for p in config_dir().iterdir() if p.is_dir()}
    for override in OverridesParser.create().parse_overrides(overrides):
        if override.key_or_group in groups and not override.is_delete() and override.value() is None:
            group = override.key_or_group
            raise ConfigError(group, f"a group cannot be set to null; drop it with ~{group} "
                                     f"(e.g. gantrain experiment=grid25 ~{group})")
