"""The ``gantrain`` command: a thin Hydra app around :func:`gantrain.train.train`.

TensorFlow is imported only once a run starts, so ``gantrain --help`` stays fast.

Usage: ``gantrain model=dcgan loss=wgan_gp``; ``gantrain resume=outputs/<date>/<time>``.
"""

from __future__ import annotations

import os
import sys

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import CompactHydraException, HydraException, OverrideParseException
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gantrain.config import config_dir
from gantrain.errors import ConfigError, GantrainError
from gantrain.run_dir import RunDir

# Lines of Hydra's composition errors that only repeat the key or describe Hydra's internals.
_NOISE = ("full_key:", "object_type=", "reference_type=", "Config search path", "provider=",
          "Set the environment variable HYDRA_FULL_ERROR", "See https://hydra.cc")


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> dict | float | None:
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    resuming = bool(cfg.resume)
    try:
        if resuming:
            run = RunDir(cfg.resume)
            cfg = run.resumed_config(cfg, overrides)
        else:
            run = RunDir(hydra_cfg.runtime.output_dir)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        from gantrain.train import train

        result = train(cfg, run.root, resume=resuming, overrides=overrides)
    except GantrainError as err:
        if hydra_cfg.mode == RunMode.MULTIRUN:
            # Hydra records the failed job, the sweep goes on, and the command exits 1 at the end.
            print(f"gantrain: error: {err}", file=sys.stderr)
            raise JobFailed(str(err)) from None
        _fail(str(err))
    if "stopped_by" in result:
        # Preemption (SIGTERM) is a clean stop; Ctrl-C exits as interrupted shells do.
        sys.exit(0 if result["stopped_by"] == "SIGTERM" else 130)
    select = OmegaConf.select(cfg, "eval.select")
    if select is not None:
        # What sweepers that optimise (Optuna) read: the best value of the selected metric.
        return float(result.get(f"best_{select}", float("nan")))
    return result


class JobFailed(CompactHydraException):
    """A sweep job rejected by gantrain; Hydra reports it as its message alone."""


def main() -> None:
    """Console entry point: reject bad overrides in one line before Hydra creates any directory."""
    args = get_args_parser().parse_args()
    informational = args.help or args.hydra_help or args.cfg or args.info or args.shell_completion
    custom_configs = args.config_path or args.config_name or args.config_dir
    if not (informational or custom_configs):
        try:
            _precheck(args.overrides, args.multirun)
        except OverrideParseException as err:
            _fail(_one_line(f"cannot parse '{err.override}': {err.message}"))
        except (GantrainError, HydraException, OmegaConfBaseException) as err:
            _fail(_one_line(str(err)))
    _app()


def _precheck(overrides: list[str], multirun: bool) -> None:
    """Compose the config for every job of the command, as Hydra is about to, to catch unknown
    keys, options and syntax; and check that a resume target holds a run."""
    jobs = [overrides]
    if multirun:
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
            jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        except HydraException:
            return  # another sweeper's syntax: leave it to Hydra
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for job in jobs:
            cfg = compose("config", overrides=job)
            if cfg.resume and multirun:
                raise ConfigError("resume", "continues one run; it cannot be combined with -m")
            if cfg.resume:
                RunDir(cfg.resume).check_resumable()


def _one_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith(_NOISE))


def _fail(message: str) -> None:
    print(f"gantrain: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
