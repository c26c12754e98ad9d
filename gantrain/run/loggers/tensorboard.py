"""``logger=tensorboard`` (the default): TensorBoard events in ``<run>/tb/``: the config and the
environment as text at every start, the metrics as scalars, the preview grid as the image ``samples``.

Usage: ``tensorboard --logdir <run>``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.run.loggers import LOGGERS, Logger, Opening


class TensorBoard(Logger):
    def __init__(self, opening: Opening):
        self.writer = tf.summary.create_file_writer(str(opening.run.tb))
        with self.writer.as_default():
            tf.summary.text("config", f"```\n{OmegaConf.to_yaml(opening.config)}```", step=opening.step)
            environment = json.dumps(opening.environment, indent=2)
            tf.summary.text("environment", f"```\n{environment}\n```", step=opening.step)
        # One compiled call for a report's scalars (traced for this writer, and again only for a new
        # set of names): one eager summary op per metric took about a millisecond each.
        self._scalars = tf.function(_scalars)

    def metrics(self, step: int, record: dict[str, float]) -> None:
        values = {name: tf.constant(value, tf.float32) for name, value in record.items()}
        with self.writer.as_default():
            self._scalars(values, tf.constant(step, tf.int64))

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        with self.writer.as_default():
            tf.summary.image("samples", pixels.reshape(1, *pixels.shape[:2], -1), step=step)

    def close(self, failed: bool) -> None:
        self.writer.close()


def _scalars(values: dict[str, tf.Tensor], step: tf.Tensor) -> None:
    for name, value in values.items():
        tf.summary.scalar(name, value, step=step)


@LOGGERS.register("tensorboard")
def open_tensorboard(opening: Opening) -> Logger:
    """TensorBoard events in ``<run>/tb/``."""
    return TensorBoard(opening)
