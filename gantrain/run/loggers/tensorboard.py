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

    def metrics(self, step: int, record: dict[str, float]) -> None:
        with self.writer.as_default():
            for name, value in record.items():
                tf.summary.scalar(name, value, step=step)

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        with self.writer.as_default():
            tf.summary.image("samples", pixels.reshape(1, *pixels.shape[:2], -1), step=step)

    def close(self, failed: bool) -> None:
        self.writer.close()


@LOGGERS.register("tensorboard")
def open_tensorboard(opening: Opening) -> Logger:
    """TensorBoard events in ``<run>/tb/``."""
    return TensorBoard(opening)
