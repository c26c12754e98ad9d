"""The ``gantrain`` command: a thin Hydra app around :func:`gantrain.run.train.train`.

TensorFlow is imported only once a run starts, so ``gantrain --help`` stays fast.

Usage: ``gantrain model=dcgan loss=wgan_gp``; ``gantrain resume=outputs/<date>/<time>``.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import re
import shlex
import sys
from pathlib import Path
from typing import NoReturn, cast

import hydra
from hydra import compose, initialize_config_dir
from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra._internal.utils import get_args_parser
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import (
    CompactHydraException,
    ConfigCompositionException,
    HydraException,
    OverrideParseException,
)
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from gantrain.commands import console
from gantrain.commands.targets import check_targets, unswept
from gantrain.commands.version import version_text
from gantrain.config import (
    check_group_overrides,
    check_override_keys,
    check_top_level,
    check_values,
    config_dir,
)
from gantrain.errors import ConfigError, GantrainError, file_error
from gantrain.evaluation.plan import kind_of
from gantrain.run.directory import (
    NewDirectories,
    RunDir,
    RunInUse,
    RunLock,
    check_makeable,
    display_path,
)

# Lines of Hydra's composition errors that only repeat the key or describe Hydra's internals.
_NOISE = (
    "full_key:",
    "object_type=",
    "reference_type=",
    "Config search path",
    "provider=",
    "Set the environment variable HYDRA_FULL_ERROR",
    "See https://hydra.cc",
)

# hydra.run.dir is ${gantrain.or:${resume},outputs/<date>/<time>}: a resumed run continues in its
# own directory. (oc.select falls back only when a key is missing, and `resume: null` is not.)
OmegaConf.register_new_resolver("gantrain.or", lambda value, default: default if value is None else value, replace=True)

# The directories this command is about to create for its run, so that a rejected command can
# remove them again (set by main before Hydra makes them).
_new_dirs = NewDirectories()


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def _app(cfg: DictConfig) -> dict | float | None:
    hydra_cfg = HydraConfig.get()
    # The overrides as typed: read through the config, a value's interpolation would be resolved
    # (train.g_lr=${oc.env:LR}), and an unset variable would end the command in a traceback before
    # check_values names the key.
    overrides = cast(list[str], OmegaConf.to_container(hydra_cfg.overrides.task, resolve=False))
    resuming = bool(cfg.resume)
    multirun = hydra_cfg.mode == RunMode.MULTIRUN
    run = RunDir(cfg.resume if resuming else hydra_cfg.runtime.output_dir)
    # The processes of a multi-worker run share one run directory: each locks the one it writes (the
    # chief the run's, the others workers/<id>) once train() knows which process it is.
    cluster = bool(os.environ.get("TF_CONFIG")) or cfg.strategy.name == "multi_worker"
    try:
        # From before the saved config is read until the run ends.
        with contextlib.nullcontext() if cluster else RunLock(run.root):
            result, cfg = _train(cfg, run, resuming, overrides, multirun)
    except RunInUse as err:
        _refuse(str(err), multirun)  # the directory is the other process's: leave it as it is
    if not multirun:
        print(ending(result, run.root, cfg.train.steps, cfg.dataset.name, tensorboard=run.tb.is_dir()))
    if "stopped_by" in result:
        # Preemption (SIGTERM) is a clean stop; Ctrl-C exits as interrupted shells do.
        sys.exit(0 if result["stopped_by"] == "SIGTERM" else 130)
    select = OmegaConf.select(cfg, "eval.select")
    if select is not None:
        # What sweepers that optimise (Optuna) read: the best value of the selected metric.
        return float(result.get(f"best_{select}", float("nan")))
    return result


def _train(
    cfg: DictConfig, run: RunDir, resuming: bool, overrides: list[str], multirun: bool
) -> tuple[dict, DictConfig]:
    """(train's result, the config the run ran with); a refused single run's new directory is
    removed again."""
    try:
        if resuming:
            cfg = run.resumed_config(cfg, overrides)
        with HeldLogFile() as log_file:
            check_values(cfg)  # a wrong value refused before TensorFlow's start-up: in a second, not ten
            from gantrain.run.train import train

            try:
                return train(cfg, run.root, resume=resuming, overrides=overrides, opened=log_file.release), cfg
            except OSError as err:  # a full disk, a folder that became read-only: one line naming the path
                raise file_error(err) from None
    except GantrainError as err:
        if not multirun and not run.holds_run():
            _new_dirs.remove(run.root)  # refused before anything was written: leave no trace
        _refuse(str(err), multirun)


def _refuse(message: str, multirun: bool) -> NoReturn:
    if multirun:
        # Hydra records the failed job, the sweep goes on, and the command exits 1 at the end.
        print(f"gantrain: error: {message}", file=sys.stderr)
        raise JobFailed(message) from None
    _fail(message)


class HeldLogFile:
    """Holds back what the console log would write to ``gantrain.log`` in the run directory until
    the run is opened, so a refused command writes nothing there; a refused command's lines are
    dropped (the console has shown them)."""

    def __enter__(self) -> HeldLogFile:
        root = logging.getLogger()
        self.files = [h for h in root.handlers if isinstance(h, logging.FileHandler)]
        self.held = logging.handlers.BufferingHandler(capacity=10_000)
        for handler in self.files:
            root.removeHandler(handler)
        root.addHandler(self.held)
        return self

    def release(self) -> None:
        """The run is open: write what was held, and log to the file directly from now on."""
        root = logging.getLogger()
        root.removeHandler(self.held)
        for handler in self.files:
            root.addHandler(handler)
            for record in self.held.buffer:
                handler.handle(record)
        self.held.buffer.clear()

    def __exit__(self, *exc) -> None:
        if self.held in logging.getLogger().handlers:  # never opened: the file stays unwritten
            logging.getLogger().removeHandler(self.held)
            for handler in self.files:
                # Closed, not handed back: a refused run's new directory is removed next, and a
                # handler left pointing into it would fail every later log call of this process.
                handler.close()


class JobFailed(CompactHydraException):
    """A sweep job rejected by gantrain; Hydra reports it as its message alone."""


def ending(result: dict, run_dir: Path, steps: int, dataset: str = "", tensorboard: bool = True) -> str:
    """What a run says when it ends: where it got to, its last numbers, and what to do next (the
    TensorBoard command when the run logs there: ``tensorboard``)."""
    where = display_path(run_dir)
    stopped = result.get("stopped_by")
    step = int(result.get("step", 0))
    head = f"{'Stopped by ' + stopped if stopped else 'Finished'} at step {step} of {steps}; run directory {where}"
    numbers = {k: v for k, v in result.items() if k not in ("step", "stopped_by")}
    lines = [head]
    if numbers:
        lines.append("  last: " + ", ".join(f"{k} {v:.4g}" for k, v in numbers.items()))
    # Quoted for a shell where the path holds spaces or other shell characters, so each pastes.
    run_key, out = shlex.quote(f"run_dir={where}"), shlex.quote(f"out={where}/generated")
    logdir, resume = shlex.quote(where), shlex.quote(f"resume={_override_value(where)}")
    lines += [
        "Next:",
        f"  gantrain-eval {run_key}        # sample metrics of the latest checkpoint",
        f"  gantrain-generate {run_key} {out}"
        + (
            "   # its samples as PNGs" if kind_of(dataset) != "mixture" else " format=npz   # its points in samples.npz"
        ),
    ]
    if tensorboard:
        lines.append(f"  tensorboard --logdir {logdir}         # losses and sample grids over time")
    if stopped or step < steps:
        lines.append(f"  gantrain {resume}              # continue from step {step}")
    else:
        lines.append(f"  gantrain {resume} train.steps={2 * steps}   # train longer")
    return "\n".join(lines)


def _override_value(text: str) -> str:
    """``text`` as the value of an override that Hydra reads back whole: as it is when it can, else
    single-quoted (a path holding a quote, ``&``, parentheses or a comma, say)."""
    try:
        if OverridesParser.create().parse_override(f"resume={text}").value() == text:
            return text
    except HydraException:
        pass
    # In a quoted value only backslashes before a quote, or before the closing quote, are escapes.
    return "'" + re.sub(r"(\\*)('|$)", lambda m: m[1] * 2 + ("\\'" if m[2] else ""), text) + "'"


def main() -> None:
    """Console entry point: reject bad overrides in one line before Hydra creates any directory."""
    if "--version" in sys.argv[1:]:  # gantrain's versions, not Hydra's own --version
        print(version_text())
        return
    console.quiet_tensorflow()
    args = get_args_parser().parse_args()
    informational = args.help or args.hydra_help or args.cfg or args.info or args.shell_completion
    custom_configs = args.config_path or args.config_name or args.config_dir
    if args.help and not custom_configs:
        from gantrain.commands.help import render_help

        try:
            check_group_overrides(args.overrides)
            print(render_help(args.overrides))
        except (GantrainError, HydraException, OmegaConfBaseException) as err:
            _fail(_one_line(str(err)))
        return
    if not (informational or custom_configs):
        try:
            run_dir = _precheck(args.overrides, args.multirun)
        except OverrideParseException as err:
            _fail(_one_line(f"cannot parse '{err.override}': {err.message}"))
        except (GantrainError, HydraException, OmegaConfBaseException) as err:
            _fail(_one_line(str(err)))
        if run_dir is not None:
            _new_dirs.plan(run_dir)
            if not any(o.startswith(("hydra.run.dir=", "resume=")) for o in args.overrides):
                # The dated directory, fixed now: the one planned is the one Hydra creates.
                sys.argv.append(f"hydra.run.dir={run_dir}")
    _app()


def _precheck(overrides: list[str], multirun: bool) -> str | None:
    """Compose the config for every job of the command, as Hydra is about to, to catch unknown
    keys, options, syntax and callables Hydra would call (:mod:`gantrain.commands.targets`); and check that
    a resume target holds a run. Returns the run directory of a single run (None for sweeps)."""
    check_group_overrides(overrides)
    jobs = [overrides]
    if multirun:
        try:
            parsed = OverridesParser.create().parse_overrides(overrides)
            jobs = [job for batch in BasicSweeper.split_arguments(parsed, None) for job in batch]
        except HydraException:  # another sweeper's syntax: Hydra splits it; check what all jobs share
            jobs = [unswept(overrides)]
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        for job in jobs:
            try:
                cfg = compose("config", overrides=job, return_hydra_config=True)
            except ConfigCompositionException:
                # Hydra advises appending (+key=value) any key it cannot find: a typo is likelier.
                check_override_keys(job, lambda choices: compose("config", overrides=choices))
                raise
            check_targets(cfg)
            check_top_level(cfg, job)
            if cfg.resume and multirun:
                raise ConfigError("resume", "continues one run; it cannot be combined with -m")
            if cfg.resume:
                RunDir(cfg.resume).check_resumable()
            if multirun:
                check_makeable(cfg.hydra.sweep.dir, "hydra.sweep.dir")
            else:
                check_makeable(cfg.hydra.run.dir, "hydra.run.dir")
        return None if multirun else str(cfg.hydra.run.dir)


def _one_line(message: str) -> str:
    lines = [line.strip() for line in message.splitlines()]
    return " ".join(line for line in lines if line and not line.startswith(_NOISE))


def _fail(message: str) -> NoReturn:
    print(f"gantrain: error: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
