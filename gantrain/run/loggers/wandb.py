"""``logger=wandb``: a Weights & Biases run (``pip install "gantrain[wandb]"``), its files in
``<run>/wandb/``. Metrics are plotted against the training step (the ``step`` metric); the preview
grid is the image ``samples``; the config is the run's config.

The W&B run's id is kept in ``<run>/wandb.id``, so a resume (``resume=<run>``) continues the same
W&B run. ``mode``: ``offline`` keeps everything on this machine (``wandb sync <run>/wandb`` uploads
it later); null follows ``$WANDB_MODE``, else online (which needs ``wandb login``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import numpy as np

from gantrain.errors import GantrainError
from gantrain.run.directory import atomic_write
from gantrain.run.loggers import LOGGERS, Logger, Opening


class WandbRun(Logger):
    def __init__(self, run: Any):
        import wandb

        self.wandb, self.run = wandb, run
        # Plotted against gantrain's step, not W&B's own counter: that one restarts when a resume
        # runs offline, and cannot go back to a step logged before a rollback.
        run.define_metric("step")
        run.define_metric("*", step_metric="step")

    def metrics(self, step: int, record: dict[str, float]) -> None:
        self.run.log({"step": step, **record})

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        self.run.log({"step": step, "samples": self.wandb.Image(str(path))})

    def close(self, failed: bool) -> None:
        self.run.finish(exit_code=1 if failed else 0)


@LOGGERS.register("wandb", package="wandb", chief_only=True)
def open_wandb(
    opening: Opening,
    project: str = "gantrain",
    entity: str | None = None,
    run_name: str | None = None,
    mode: str | None = None,
) -> Logger:
    """A W&B run in ``project`` (of ``entity``; null: your default), named ``run_name`` (null: the
    run directory's name); the same one again on a resume."""
    import wandb

    id_file = opening.run.root / "wandb.id"
    run_id = id_file.read_text().strip() if opening.resumed and id_file.is_file() else None
    try:
        run = wandb.init(
            project=project,
            entity=entity,
            name=run_name or opening.run.root.name,
            id=run_id,
            resume="allow",
            config=None if opening.resumed else opening.params(),
            dir=str(opening.run.root),
            # Any: wandb checks and names the modes it knows; a type check without wandb installed
            # (CI's, with the dev extra only) and one with it then agree.
            mode=cast(Any, mode),
        )
    except wandb.Error as err:
        raise GantrainError(f"logger.wandb: cannot start a W&B run ({str(err).splitlines()[0]})") from None
    if run_id is None:
        atomic_write(id_file, run.id + "\n")
    return WandbRun(run)
