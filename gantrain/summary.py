"""Hydra callback: ``summary.csv`` in a sweep directory, one row per job.

Each job's outcome is written to ``<job dir>/result.json`` when it ends; the CSV is then rebuilt
from all of them, so it is current after every job, even if the sweep is cut short.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig

from gantrain.run_dir import atomic_write

FIRST_COLUMNS = ["job", "overrides", "status", "step", "d_loss", "g_loss", "gp"]


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        row: dict[str, Any] = {
            "job": config.hydra.job.num,
            "overrides": " ".join(job_return.overrides or []),
            "status": job_return.status.name.lower(),
        }
        if job_return.status == JobStatus.COMPLETED:
            row.update(job_return.return_value or {})
        else:
            row["error"] = str(job_return._return_value)
        job_dir = Path(config.hydra.runtime.output_dir)
        atomic_write(job_dir / "result.json", json.dumps(row) + "\n")
        write_summary(Path(config.hydra.sweep.dir))


def write_summary(sweep_dir: Path) -> Path:
    """Rebuild ``summary.csv`` from the ``result.json`` of every job under ``sweep_dir``."""
    rows = [json.loads(p.read_text()) for p in sweep_dir.rglob("result.json")]
    rows.sort(key=lambda row: row["job"])
    extra = sorted({k for row in rows for k in row} - set(FIRST_COLUMNS))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIRST_COLUMNS + extra, restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / "summary.csv"
    atomic_write(path, text.getvalue())
    return path
