"""``logger=mlflow``: an MLflow run (``pip install "gantrain[mlflow]"``) in ``experiment``: the
metrics at their training steps, the config as the run's params, the preview grids as artifacts
under ``samples/``.

The MLflow run's id is kept in ``<run>/mlflow.id``, so a resume (``resume=<run>``) continues the same
MLflow run. ``tracking_uri``: where runs are stored (a server ``http://...``, ``sqlite:///mlflow.db``);
null follows ``$MLFLOW_TRACKING_URI``, else MLflow's default.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from gantrain.errors import GantrainError
from gantrain.run.directory import atomic_write
from gantrain.run.loggers import LOGGERS, Logger, Opening

BATCH = 100  # params per log_batch call: MLflow's limit


class MlflowRun(Logger):
    def __init__(self, client: Any, run_id: str):
        self.client, self.run_id = client, run_id

    def metrics(self, step: int, record: dict[str, float]) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.client.log_batch(self.run_id, metrics=[Metric(k, float(v), now, step) for k, v in record.items()])

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        self.client.log_artifact(self.run_id, str(path), "samples")

    def close(self, failed: bool) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")


@LOGGERS.register("mlflow", package="mlflow", chief_only=True)
def open_mlflow(
    opening: Opening, tracking_uri: str | None = None, experiment: str = "gantrain", run_name: str | None = None
) -> Logger:
    """An MLflow run in ``experiment`` (made if need be), named ``run_name`` (null: the run
    directory's name), the config logged as its params; the same run again on a resume."""
    from mlflow import MlflowClient
    from mlflow.entities import Param
    from mlflow.exceptions import MlflowException

    client = MlflowClient(tracking_uri)
    id_file = opening.run.root / "mlflow.id"
    try:
        if opening.resumed and id_file.is_file():
            run_id = id_file.read_text().strip()
            client.update_run(run_id, status="RUNNING")
            return MlflowRun(client, run_id)
        found = client.get_experiment_by_name(experiment)
        experiment_id = found.experiment_id if found else client.create_experiment(experiment)
        run_id = client.create_run(experiment_id, run_name=run_name or opening.run.root.name).info.run_id
        atomic_write(id_file, run_id + "\n")
        params = [Param(k, v) for k, v in opening.params().items()]
        for first in range(0, len(params), BATCH):
            client.log_batch(run_id, params=params[first : first + BATCH])
    except MlflowException as err:
        raise GantrainError(f"logger.mlflow: cannot start an MLflow run ({str(err).splitlines()[0]})") from None
    return MlflowRun(client, run_id)
