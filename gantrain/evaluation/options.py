"""How samples are drawn and measured: the keys of the ``eval`` node, ``gantrain-eval`` and
``gantrain-generate``, declared once, and their range checks.

- :class:`SamplingOptions`: discriminator-driven sampling (``sampling``, ``drs_percentile``, ...),
  shared by all three; it travels as one value down to the sampler.
- :class:`MetricOptions`: those and the feature extractor, shared by ``eval`` and ``gantrain-eval``.
- :class:`NoiseOptions`: the truncation of G's noise, for ``gantrain-eval`` and ``gantrain-generate``
  (samples of a finished run; training's evaluations keep the noise as drawn).
- :class:`EvalConfig`: the ``eval`` node, checked by :func:`check_eval`.

Usage: ``evals = check_eval(cfg.get("eval"))`` -> typed :class:`EvalConfig`, or a ConfigError naming the key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import cast

from omegaconf import DictConfig, OmegaConf

from gantrain.errors import ConfigError
from gantrain.evaluation.plan import EXTRACTORS
from gantrain.registry import check_against

DRIVEN_GENERATORS = ("ema", "raw")


@dataclass
class SamplingOptions:
    """Whether the run's D chooses (drs, mh) or moves (dot) the samples, and how."""

    sampling: str = field(
        default="none",
        metadata={
            "help": "none, drs (discriminator rejection sampling), mh (Metropolis-Hastings): D chooses the samples; "
            "dot (discriminator optimal transport): D moves them"
        },
    )
    drs_percentile: float | None = field(
        default=95.0,
        metadata={
            "help": "drs: the percentile of F(x) kept with probability 1/2 (gamma); null: exact rejection sampling"
        },
    )
    mh_steps: int = field(default=100, metadata={"help": "mh: proposals per chain (D calls per sample)"})
    dot_steps: int = field(
        default=100, metadata={"help": "dot: Adam updates of each sample's noise (D gradients per sample)"}
    )
    dot_lr: float = field(default=0.01, metadata={"help": "dot: the Adam step size in latent space"})
    dot_k: float | None = field(
        default=None,
        metadata={
            "help": "dot: the Lipschitz constant dividing D's logit; null: dot_k_fraction x k_eff, estimated "
            "from 10 sets of 100 pairs of noise"
        },
    )
    dot_k_fraction: float = field(
        default=1.0,
        metadata={"help": "dot with dot_k null: the constant as a fraction of k_eff (1: the paper's k_eff)"},
    )
    driven_generator: str = field(
        default="ema",
        metadata={
            "help": "drs/mh/dot of a run with train.ema: which G D's choices apply to; ema: the moving average "
            "(what plain samples come from), raw: G itself, the one D was trained against"
        },
    )


@dataclass
class NoiseOptions:
    """How G's noise is drawn by the commands that read a finished run."""

    truncation: float | None = field(
        default=None,
        metadata={"help": "psi > 0: noise entries beyond +-psi drawn again (BigGAN's truncation trick); null: none"},
    )


def check_sampling(options: SamplingOptions, prefix: str = "") -> None:
    """Range checks of the sampling keys; ``prefix``: ``eval.`` or none."""
    from gantrain.evaluation.rejection import SAMPLERS

    if options.sampling not in SAMPLERS:
        raise ConfigError(f"{prefix}sampling", f"unknown sampler '{options.sampling}'; known: {', '.join(SAMPLERS)}")
    if options.drs_percentile is not None and not 0 <= options.drs_percentile <= 100:
        raise ConfigError(f"{prefix}drs_percentile", f"must be in [0, 100] or null, got {options.drs_percentile}")
    if options.mh_steps < 1:
        raise ConfigError(f"{prefix}mh_steps", f"must be >= 1, got {options.mh_steps}")
    if options.dot_steps < 1:
        raise ConfigError(f"{prefix}dot_steps", f"must be >= 1, got {options.dot_steps}")
    if options.driven_generator not in DRIVEN_GENERATORS:
        raise ConfigError(
            f"{prefix}driven_generator",
            f"must be one of {', '.join(DRIVEN_GENERATORS)}, got {options.driven_generator}",
        )
    for key in ("dot_lr", "dot_k", "dot_k_fraction"):
        if getattr(options, key) is not None and not getattr(options, key) > 0:
            raise ConfigError(f"{prefix}{key}", f"must be > 0, got {getattr(options, key)}")
    if options.dot_k is not None and options.dot_k_fraction != 1.0:
        raise ConfigError(f"{prefix}dot_k_fraction", "applies to the estimated k_eff: give it or dot_k, not both")


@dataclass
class MetricOptions(SamplingOptions):
    """How samples are measured: the keys the ``eval`` node and ``gantrain-eval`` share."""

    num_samples: int | None = field(
        default=None,
        metadata={"help": "samples drawn from fixed noise; default 2500 (26000 for stacked_mnist, as VEEGAN/PacGAN)"},
    )
    features: str = field(
        default="auto",
        metadata={
            "help": "image features: auto, classifier (MNIST, Fashion-MNIST), inception, none (pixel statistics)"
        },
    )
    weights: str | None = field(
        default=None, metadata={"help": "InceptionV3 weights (.h5); default: the Keras cache, else a download"}
    )
    inception_graph: str | None = field(
        default=None, metadata={"help": "the 2015 Inception graph (.pb) of published FIDs, instead of Keras's"}
    )


def check_metric_options(options: MetricOptions, prefix: str = "") -> None:
    """Range checks of the keys ``eval`` and ``gantrain-eval`` share; ``prefix``: ``eval.`` or none."""
    if options.features not in EXTRACTORS:
        raise ConfigError(
            f"{prefix}features", f"unknown extractor '{options.features}'; known: {', '.join(EXTRACTORS)}"
        )
    check_sampling(options, prefix)


@dataclass
class EvalConfig(MetricOptions):
    """The ``eval`` node: metrics of the generator during training (``gantrain.run.duties.Evaluation``)."""

    every: int | None = None  # generator steps between evaluations; null: none during training
    # A metric to keep the best checkpoint by (checkpoints/best/), e.g. fid or hq; null: none.
    select: str | None = None


def check_eval(node: DictConfig | None) -> EvalConfig:
    """Type- and range-check the ``eval`` node (absent in runs saved before it existed: off)."""
    options = cast(EvalConfig, OmegaConf.to_object(check_against(EvalConfig, node or {}, "eval", "eval")))
    for key in ("every", "num_samples"):
        value = getattr(options, key)
        if value is not None and value < 1:
            raise ConfigError(f"eval.{key}", f"must be >= 1, got {value}")
    check_metric_options(options, "eval.")
    if options.select is not None and options.every is None:
        raise ConfigError("eval.select", "needs eval.every: the best checkpoint is chosen among evaluations")
    return options
