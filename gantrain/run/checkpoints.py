"""Checkpoints of a run: found from their files, a finiteness check for the weights, and restores
with a fallback.

``tf.train.CheckpointManager`` writes the data files first and then replaces the ``checkpoint``
index file atomically, so a crash at any instant leaves the previous checkpoint as "latest". The
index is still only a convenience (it can be deleted, garbled or left behind by a copy): which
checkpoints a run has is read from their own files, ``ckpt-<step>.index`` and ``.data-*``, and
the index is rebuilt from them when a run is resumed.

Usage::

    ckpts = Checkpoints(run.checkpoints, keep=3, generator=G, discriminator=D, step=step, ...)
    ckpts.restore()   # latest readable checkpoint -> its step (0 if there is none)
    ckpts.save(step)
    latest_readable(run.checkpoints)   # what gantrain-eval and gantrain-generate restore
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
from pathlib import Path

import tensorflow as tf
from tensorflow.python.checkpoint.checkpoint_management import (
    update_checkpoint_state_internal,
)

from gantrain.errors import GantrainError
from gantrain.run.directory import atomic_write

log = logging.getLogger(__name__)

_INDEX_FILE = re.compile(r"ckpt-(\d+)\.index")


class Checkpoints:
    def __init__(self, directory: Path, keep: int, **objects):
        self.directory, self.keep = Path(directory), keep
        self.checkpoint = tf.train.Checkpoint(**objects)
        # Made at the first save or restore: a manager reads the index, which may be unreadable.
        self._manager: tf.train.CheckpointManager | None = None
        models = [obj for obj in objects.values() if hasattr(obj, "weights")]
        weights = [w for model in models for w in model.weights]
        # One compiled call: checked before every report, one eager op per weight took 5 ms a step
        # on a tiny network, more than its training step.
        self._all_finite = tf.function(lambda: tf.reduce_all([tf.reduce_all(tf.math.is_finite(w)) for w in weights]))

    @property
    def manager(self) -> tf.train.CheckpointManager:
        if self._manager is None:
            self._manager = tf.train.CheckpointManager(
                self.checkpoint, str(self.directory), max_to_keep=self.keep, checkpoint_name="ckpt"
            )
        return self._manager

    def latest_step(self) -> int | None:
        latest = self.manager.latest_checkpoint
        return step_of(latest) if latest else None

    def weights_finite(self) -> bool:
        return bool(self._all_finite())

    def save(self, step: int) -> None:
        """Save at ``step``; the training loop checks ``weights_finite()`` first."""
        _save(self.manager, step, f"checkpoint {step}", "; the previous checkpoint is kept")

    def restore(self) -> int:
        """Restore the newest readable checkpoint (:func:`latest_readable`) and index the run's
        checkpoints up to it; returns its step, or 0 if the run has none yet (nothing was trained:
        the seeded start is the same)."""
        path = latest_readable(self.directory)
        if path is None:
            log.warning("no checkpoint in %s yet: starting from step 0", self.directory)
            return 0
        status = None
        try:
            status = self.checkpoint.restore(path)
            status.assert_existing_objects_matched()
        except Exception as err:  # noqa: BLE001 - a name or a shape this run's models do not have
            if status is not None:
                status.expect_partial()  # nothing more to report when TensorFlow collects it
            raise GantrainError(
                f"resume: no checkpoint in {self.directory} can be restored into this run's models "
                f"({Path(path).name}: {_first_line(err)})"
            ) from None
        reindex(self.directory, path)
        self._manager = None  # the next save reads the rebuilt index
        return step_of(path)


def saved_checkpoints(directory: Path) -> list[str]:
    """The checkpoint prefixes in ``directory`` (``<directory>/ckpt-<step>``), oldest first, found
    from their ``.index`` files."""
    directory = Path(directory)
    steps = sorted(
        int(match[1]) for path in directory.glob("ckpt-*.index") if (match := _INDEX_FILE.fullmatch(path.name))
    )
    return [str(directory / f"ckpt-{step}") for step in steps]


def latest_readable(directory: Path) -> str | None:
    """The newest checkpoint in ``directory`` whose every tensor reads back (its checksum holds),
    warning about each newer one that does not; None if there is no checkpoint. What a resume
    continues from and what ``gantrain-eval``/``gantrain-generate`` draw from, so they agree.
    A GantrainError when checkpoints exist but none is readable."""
    problems = []
    for path in reversed(saved_checkpoints(directory)):
        problem = unreadable(path)
        if problem is None:
            return path
        problems.append(f"{Path(path).name}: {problem}")
        log.warning("cannot restore %s (%s); trying the previous checkpoint", path, problem)
    if problems:
        raise GantrainError(f"no checkpoint in {directory} can be read ({'; '.join(problems)})")
    return None


def unreadable(path: str) -> str | None:
    """Why the checkpoint ``path`` cannot be read back, in one line, or None if it can."""
    try:
        reader = tf.train.load_checkpoint(path)
        for name, dtype in reader.get_variable_to_dtype_map().items():
            if dtype != tf.variant:  # a data stream's position: NumPy cannot hold it (restore checks it)
                reader.get_tensor(name)
    except Exception as err:  # noqa: BLE001 - a short file is an IndexError, a bad checksum an OpError
        return _first_line(err)
    return None


def reindex(directory: Path, latest: str) -> None:
    """Rewrite the ``checkpoint`` index of ``directory`` from the checkpoint files up to ``latest``,
    each dated by its file, so the manager goes on rotating them out (``max_to_keep``)."""
    paths = [path for path in saved_checkpoints(directory) if step_of(path) <= step_of(latest)]
    times = [Path(f"{path}.index").stat().st_mtime for path in paths]
    update_checkpoint_state_internal(
        str(directory),
        latest,
        paths,
        save_relative_paths=True,
        all_model_checkpoint_timestamps=times,
        last_preserved_timestamp=min(times) - 1,
    )


def step_of(path: str) -> int:
    """The step of a checkpoint prefix, ``.../ckpt-<step>``."""
    return int(path.rsplit("-", 1)[1])


def _first_line(err: BaseException) -> str:
    message = (getattr(err, "message", None) or str(err) or type(err).__name__).strip()
    return message.splitlines()[0] if message else type(err).__name__


class BestCheckpoint:
    """The checkpoint with the best value of one metric so far, in its own directory (never rotated
    out by the rolling ones), with ``best.json`` = {"metric", "value", "step"}.

    Usage: ``best = BestCheckpoint(run.checkpoints / "best", ckpts.checkpoint, "fid", higher_is_better=False)``;
    ``best.offer(step, value)`` saves when ``value`` beats the best so far.
    """

    def __init__(self, directory: Path, checkpoint: tf.train.Checkpoint, metric: str, higher_is_better: bool):
        self.metric, self.higher_is_better = metric, higher_is_better
        found = saved_checkpoints(directory)
        if found:
            reindex(directory, found[-1])  # so the manager replaces it, whatever became of the index
        self.manager = tf.train.CheckpointManager(checkpoint, str(directory), max_to_keep=1, checkpoint_name="ckpt")
        self.record = Path(directory) / "best.json"
        self.value: float | None = None
        if self.record.is_file() and found:  # a resumed run competes with its past
            try:
                self.value = float(json.loads(self.record.read_text())["value"])
            except (OSError, ValueError, KeyError, TypeError) as err:
                raise GantrainError(
                    f"{self.record} cannot be read ({type(err).__name__}: {err}); "
                    "without it the best checkpoint would be replaced by any later one"
                ) from None

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
