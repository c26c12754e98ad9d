"""Checkpoints of a run: a finiteness check for the weights, and restores with a fallback.

``tf.train.CheckpointManager`` writes the data files first and then replaces the ``checkpoint``
index file atomically, so a crash at any instant leaves the previous checkpoint as "latest".

Usage::

    ckpts = Checkpoints(run.checkpoints, keep=3, generator=G, discriminator=D, step=step, ...)
    ckpts.restore()   # latest readable checkpoint -> its step (0 if there is none)
    ckpts.save(step)
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from pathlib import Path

import tensorflow as tf

from gantrain.errors import GantrainError
from gantrain.run_dir import atomic_write

log = logging.getLogger(__name__)


class Checkpoints:
    def __init__(self, directory: Path, keep: int, **objects):
        self.checkpoint = tf.train.Checkpoint(**objects)
        self.manager = tf.train.CheckpointManager(
            self.checkpoint, str(directory), max_to_keep=keep, checkpoint_name="ckpt"
        )
        models = [obj for obj in objects.values() if hasattr(obj, "weights")]
        self._weights = [w for model in models for w in model.weights]

    def latest_step(self) -> int | None:
        latest = self.manager.latest_checkpoint
        return int(latest.rsplit("-", 1)[1]) if latest else None

    def weights_finite(self) -> bool:
        return bool(tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in self._weights]))

    def save(self, step: int) -> None:
        """Save at ``step``; the training loop checks ``weights_finite()`` first."""
        _save(self.manager, step, f"checkpoint {step}", "; the previous checkpoint is kept")

    def restore(self) -> int:
        """Restore the newest readable checkpoint, newest first; returns its step, or 0 if the run
        has none yet (nothing was trained: the seeded start is the same)."""
        candidates = list(reversed(self.manager.checkpoints))
        if not candidates:
            log.warning("no checkpoint in %s yet: starting from step 0", self.manager.directory)
            return 0
        problems = []
        for path in candidates:
            status = None
            try:
                status = self.checkpoint.restore(path)
                status.assert_existing_objects_matched()
            except Exception as err:  # noqa: BLE001 - any way a file fails to load: try an older one
                if status is not None:
                    status.expect_partial()  # the next restore overwrites what this one assigned
                first_line = (getattr(err, "message", None) or str(err)).strip().splitlines()[0]
                problems.append(f"{Path(path).name}: {first_line}")
                log.warning("cannot restore %s (%s); trying the previous checkpoint", path, first_line)
                continue
            return int(path.rsplit("-", 1)[1])
        raise GantrainError(
            f"resume: no checkpoint in {self.manager.directory} can be restored into this run's "
            f"models ({'; '.join(problems)})"
        )


class BestCheckpoint:
    """The checkpoint with the best value of one metric so far, in its own directory (never rotated
    out by the rolling ones), with ``best.json`` = {"metric", "value", "step"}.

    Usage: ``best = BestCheckpoint(run.checkpoints / "best", ckpts.checkpoint, "fid", higher_is_better=False)``;
    ``best.offer(step, value)`` saves when ``value`` beats the best so far.
    """

    def __init__(self, directory: Path, checkpoint: tf.train.Checkpoint, metric: str, higher_is_better: bool):
        self.metric, self.higher_is_better = metric, higher_is_better
        self.manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=1, checkpoint_name="ckpt")
        self.record = Path(directory) / "best.json"
        self.value: float | None = None
        if self.record.is_file() and self.manager.latest_checkpoint:  # a resumed run competes with its past
            try:
                self.value = float(json.loads(self.record.read_text())["value"])
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise GantrainError(f"{self.record} cannot be read ({type(err).__name__}: {err}); "
                                    "without it the best checkpoint would be replaced by any later one") from None

    def offer(self, step: int, value: float) -> bool:
        if not math.isfinite(value):
            return False
        if self.value is not None and (value <= self.value if self.higher_is_better else value >= self.value):
            return False
        _save(self.manager, step, "the best checkpoint")
        try:
            atomic_write(self.record, json.dumps({"metric": self.metric, "value": value, "step": step}) + "\n")
        except OSError as err:
            raise GantrainError(f"cannot write {self.record} ({err.strerror or err})") from None
        self.value = value
        return True


def _save(manager: tf.train.CheckpointManager, step: int, what: str, consequence: str = "") -> None:
    """``manager.save`` at ``step``; a failed write is one line naming ``what`` and the directory."""
    try:
        manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as err:
        # TensorFlow writes the shards into <prefix>_temp/ before merging them: a failed save leaves
        # that folder behind, and every later failure another.
        for temp in Path(manager.directory).glob(f"*-{step}_temp"):
            shutil.rmtree(temp, ignore_errors=True)
        message = getattr(err, "message", None) or str(err)
        raise GantrainError(
            f"cannot write {what} to {manager.directory} ({message.splitlines()[0]}){consequence}"
        ) from None
