"""The ``train`` node's schema and range checks, and where the YAML config groups live.

Usage: ``options = check_train(cfg.train)`` -> typed :class:`TrainConfig`, or a ConfigError naming
the key; ``options, evals = check_values(cfg)``: the whole config's values, before TensorFlow starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from enum import Enum
from pathlib import Path
from typing import Any, cast

from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException

from gantrain.errors import ConfigError, nearest
from gantrain.evaluation.options import EvalConfig, check_eval
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
class ScheduleOptions:
    """One cosine schedule (R3GAN's ``cosine_decay_with_warmup``, ``gantrain.training.schedules``)
    from the value of the key it schedules (its base) to ``final``; horizons in generator steps."""

    final: float = MISSING
    steps: int = MISSING  # the value is final from here on
    warmup: int = 0  # steps rising linearly from warmup_value to the base first
    warmup_value: float = 0.0
    hold: int = 0  # steps at the base after the warm-up, before the decay


@dataclass
class ScheduleConfig:
    """``train.schedule``: each quantity constant (null) or following a :class:`ScheduleOptions`."""

    lr: ScheduleOptions | None = None  # base train.g_lr; train.d_lr by the same factor
    beta2: ScheduleOptions | None = None  # base train.beta2
    gamma: ScheduleOptions | None = None  # base loss.gp_weight, the penalty's weight
    ema: ScheduleOptions | None = None  # the average's half-life in real images; base from train.ema
    augment_p: ScheduleOptions | None = None  # base train.augment_p


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
    ema: float | None = None
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
    num_samples: int | None = None
    precision: Precision = Precision.float32
    steps_per_call: int = 1  # generator steps per compiled call (fewer trips to Python)
    jit_compile: bool = False  # XLA: faster for small mlp models, slower for conv models on a CPU
    # What a non-finite loss or weight triggers.
    nan_policy: NanPolicy = NanPolicy.stop
    rollback_lr_factor: float = 0.1  # learning rates are multiplied by this at each rollback
    max_rollbacks: int = 3  # then stop as with nan_policy=stop
    # R3GAN's cosine schedules of the learning rate, Adam's beta2, the penalty's weight, the
    # average's horizon and the augmentation's probability; null: constant.
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def preview_samples(self, data_shape: tuple[int, ...]) -> int:
        """Fixed-noise samples per preview of examples of ``data_shape``: ``num_samples``, else an
        8x8 grid of images or 1024 2-D points (enough to show every mode of a mixture)."""
        return self.num_samples or (64 if len(data_shape) == 3 else 1024)


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
    "ema": _BETA,  # 0 (the average is G itself) only as the start of an ema schedule
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
    options: TrainConfig = _typed(check_against(TrainConfig, node, "train", "train"))
    for option in fields(TrainConfig):
        value = getattr(options, option.name)
        ok, rule = _RULES.get(option.name, (None, ""))  # enums are limited by their type
        if ok is not None and value is not None and not ok(value):
            raise ConfigError(f"train.{option.name}", f"{rule}, got {value}")
    if options.augment:
        from gantrain.training.augment import (
            TRANSFORMS,  # TensorFlow, only when asked for
        )

        for name in options.augment:
            if name not in TRANSFORMS:
                raise ConfigError("train.augment", f"unknown transform '{name}'; known: {', '.join(TRANSFORMS)}")
    options.augment_p = _probability_or_auto(options.augment_p)
    if options.batch_size % options.pack:
        raise ConfigError(
            "train.pack", f"must divide train.batch_size ({options.batch_size}) into whole packs, got {options.pack}"
        )
    check_schedules(options)
    return options


def _typed(node: DictConfig) -> Any:
    """The dataclass of a checked node; a key left without its value (``final`` or ``steps`` of a
    schedule) is a ConfigError naming it."""
    try:
        return OmegaConf.to_object(node)
    except MissingMandatoryValue as err:
        raise ConfigError(f"train.{err.full_key}", "needs a value") from None


# Where each schedule's values must lie, as the key it schedules.
_SCHEDULE_RULES: dict[str, tuple[Callable[[float], bool], str]] = {
    "lr": _at_least(0),
    "beta2": _BETA,
    "gamma": _at_least(0),
    "ema": _at_least(0),
    "augment_p": ((lambda v: 0 <= v <= 1), "must be in [0, 1]"),
}


def check_schedules(options: TrainConfig) -> None:
    """Each schedule's values in range, its horizons in order, and the key it schedules on.
    (``schedule.gamma`` needs a penalty: checked where the loss is built.)"""
    for name, ok_rule in _SCHEDULE_RULES.items():
        schedule: ScheduleOptions | None = getattr(options.schedule, name)
        if schedule is None:
            continue
        key = f"train.schedule.{name}"
        ok, rule = ok_rule
        for part in ("final", "warmup_value"):
            if not ok(getattr(schedule, part)):
                raise ConfigError(f"{key}.{part}", f"{rule}, got {getattr(schedule, part)}")
        for part, low in (("steps", 1), ("warmup", 0), ("hold", 0)):
            if getattr(schedule, part) < low:
                raise ConfigError(f"{key}.{part}", f"must be >= {low}, got {getattr(schedule, part)}")
        if schedule.warmup + schedule.hold >= schedule.steps:
            part = "warmup" if schedule.warmup >= schedule.steps else "hold"
            raise ConfigError(
                f"{key}.{part}",
                f"warmup + hold ({schedule.warmup + schedule.hold}) must be below "
                f"steps ({schedule.steps}): the decay needs steps of its own",
            )
    _check_schedule_bases(options)


def _check_schedule_bases(options: TrainConfig) -> None:
    """A schedule starts from the key it schedules, which must be on."""
    schedule = options.schedule
    if schedule.lr is not None and options.lr_decay:
        raise ConfigError("train.schedule.lr", "and train.lr_decay both decay the learning rate; choose one")
    if schedule.ema is not None and options.ema is None:
        raise ConfigError(
            "train.schedule.ema",
            "schedules the moving average of G, which is off: set train.ema "
            "(its start; 0 starts from G itself, as R3GAN)",
        )
    if options.ema == 0 and schedule.ema is None:
        raise ConfigError(
            "train.ema",
            "0 averages nothing (the average is G itself); it is only the start of "
            "an ema schedule (train.schedule.ema)",
        )
    if schedule.augment_p is not None and not options.augment:
        raise ConfigError("train.schedule.augment_p", "schedules the augmentation, which is off: set train.augment")
    if schedule.augment_p is not None and options.augment_p == "auto":
        raise ConfigError(
            "train.schedule.augment_p",
            "and train.augment_p=auto (ADA) both set the probability; "
            "give train.augment_p a number, the schedule's start",
        )


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
        key = next((key for key in _leaf_keys(OmegaConf.to_container(cfg)) if _fails_to_resolve(cfg, key)), "config")
        raise ConfigError(key, f"cannot be resolved ({str(err).splitlines()[0]})") from None


def check_values(cfg: DictConfig) -> tuple[TrainConfig, EvalConfig]:
    """``cfg`` resolved in place, its ``train`` and ``eval`` nodes checked: every check of a value
    that needs no data, model or TensorFlow. ``gantrain`` runs it before it imports TensorFlow, so a
    wrong value is refused in about a second rather than after TensorFlow's start-up (5 to 10 s);
    :func:`gantrain.run.train.check` starts with it."""
    resolve(cfg)
    return check_train(cfg.train), check_eval(cfg.get("eval"))


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
    known = (set(base) - {"defaults"}) | _groups() | {"hydra"}
    for key in cfg:
        if key not in known:
            raise ConfigError(str(key), f"no config defines this key{nearest(str(key), known - {'hydra'})}")


def _groups() -> set[str]:
    return {p.name for p in config_dir().iterdir() if p.is_dir() and p.name != "hydra"}


def check_group_overrides(overrides: list[str]) -> None:
    """``aux=null`` (a group set to null) is a Hydra ValueError; say how to drop a group instead.
    ``model=dcgn`` names the nearest option (Hydra lists them all)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra.core.override_parser.types import ChoiceSweep

    for override in OverridesParser.create().parse_overrides(overrides):
        group = override.key_or_group
        if group not in _groups() or override.is_delete():
            continue
        if override.value() is None:
            raise ConfigError(
                group,
                f"a group cannot be set to null; drop it with ~{group} (e.g. gantrain experiment=grid25 ~{group})",
            )
        options = {p.stem for p in (config_dir() / group).glob("*.yaml")}
        # A plain choice, several at once (logger=[tensorboard,csv]) or a sweep over them (-m model=mlp,dcgan);
        # ranges and globs are Hydra's to expand.
        value = override.value()
        chosen: list[Any]
        if isinstance(value, ChoiceSweep):
            chosen = list(override.sweep_string_iterator())
        else:
            chosen = value if isinstance(value, list) else [value]
        for option in (option for option in chosen if isinstance(option, str)):
            if option not in options:
                raise ConfigError(group, f"unknown option '{option}'{nearest(option, options)}")


def check_override_keys(overrides: list[str], compose: Callable[[list[str]], DictConfig]) -> None:
    """Refuse an override of a key no config defines (Hydra would advise adding it with ``+``),
    naming the nearest key at that level: ``train.stpes=100`` -> did you mean train.steps?

    ``compose`` composes the config from the group choices among ``overrides`` (which decide what
    keys there are)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    parsed = OverridesParser.create().parse_overrides(overrides)
    plain = [
        o
        for o in parsed
        if not (
            o.is_add()
            or o.is_force_add()
            or o.is_delete()
            or o.package is not None
            or o.key_or_group in _groups()
            or "/" in o.key_or_group
            or o.key_or_group.split(".")[0] == "hydra"
        )
    ]
    # Overrides parsed from text each keep that text (input_line is None only for ones built in code).
    cfg = compose([cast(str, o.input_line) for o in parsed if o not in plain])
    for override in plain:
        node, path = cfg, ""
        for part in override.key_or_group.split("."):
            if not isinstance(node, DictConfig):
                break  # below a value: Hydra's message says so
            if part not in node:
                known = set(map(str, node)) | (_groups() if not path else set())
                raise ConfigError(path + part, f"no config defines this key{nearest(part, known - {'hydra'}, path)}")
            node, path = node[part], f"{path}{part}."
