"""A trained run read back from its directory: its saved config, a checkpoint by name, and the
networks restored from it.

Usage: ``run, cfg = saved_run("outputs/run"); generator, discriminator = restore_models(cfg, dataset,
checkpoint_path(run, "best"))``.
"""

from __future__ import annotations

from pathlib import Path

from gantrain.errors import ConfigError
from gantrain.run.directory import RunDir


def saved_run(run_dir: str | Path):
    """(the run directory, its saved config), or a ConfigError if ``run_dir`` holds no run."""
    run = RunDir(run_dir)
    if not run.config.is_file():
        raise ConfigError("run_dir", f"{run.root} is not a gantrain run (no .hydra/config.yaml)")
    return run, run.saved_config()


def checkpoint_path(run: RunDir, checkpoint: str | int) -> str:
    """The checkpoint prefix for ``latest`` (the newest readable one, as a resume would continue
    from), ``best`` or a step, or a ConfigError listing what exists."""
    from gantrain.run.checkpoints import latest_readable, saved_checkpoints

    paths = saved_checkpoints(run.checkpoints)
    if not paths:
        raise ConfigError("run_dir", f"{run.root} has no checkpoint yet")
    if str(checkpoint) == "latest":
        latest = latest_readable(run.checkpoints)
        assert latest is not None  # checkpoints exist: the newest readable one, or a GantrainError
        return latest
    if str(checkpoint) == "best":
        best = latest_readable(run.checkpoints / "best")
        if best is None:
            raise ConfigError(
                "checkpoint", f"{run.root} has no best checkpoint (train with eval.every and eval.select)"
            )
        return best
    steps = {p.rsplit("-", 1)[1]: p for p in paths}
    if str(checkpoint) not in steps:
        raise ConfigError("checkpoint", f"no checkpoint at step {checkpoint}; kept: {', '.join(steps)} (or latest)")
    return steps[str(checkpoint)]


def restore_models(cfg, dataset, path: str, raw: bool = False):
    """(G, D) of the run ``cfg`` on ``dataset``, G restored from the checkpoint ``path``: the moving
    average of G when the run kept one, since that is what samples and evaluation use (G itself if
    ``raw``). D is built as the run trained it (taking packs of ``train.pack``), so
    :func:`restore_discriminator` can fill it."""
    import tensorflow as tf

    from gantrain.models import build_models

    classes = dataset.classes if cfg.model.get("conditional") else 0
    generator, discriminator = build_models(
        cfg.model,
        dataset.shape,
        cfg.train.precision,
        cfg.train.get("pack", 1),
        classes,
        cfg.loss.get("aux_classifier", 0) > 0,
    )
    name = "ema_generator" if uses_average(cfg, raw) else "generator"
    tf.train.Checkpoint(**{name: generator}).restore(path).expect_partial().assert_existing_objects_matched()
    return generator, discriminator


def uses_average(cfg, raw: bool = False) -> bool:
    """Whether samples of the run ``cfg`` come from the moving average of G (unless ``raw`` asks for G)."""
    return cfg.train.get("ema") is not None and not raw


def driven_by_raw(options) -> bool:
    """Whether D-driven sampling (``options``: the sampling keys) asks for G itself rather than the average."""
    return options.sampling != "none" and options.driven_generator == "raw"


def restore_discriminator(discriminator, path: str) -> None:
    """D's weights from the checkpoint ``path``, or a ConfigError if it holds none."""
    import tensorflow as tf

    try:
        tf.train.Checkpoint(discriminator=discriminator).restore(
            path
        ).expect_partial().assert_existing_objects_matched()
    except AssertionError:
        raise ConfigError(
            "sampling", f"{path} holds no discriminator to choose samples with; use sampling=none"
        ) from None
