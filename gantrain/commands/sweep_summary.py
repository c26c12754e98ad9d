"""Hydra callback: ``summary.csv`` in a sweep directory, one row per job.

Each job's outcome (its run directory, its last logged metrics with the final evaluation's when
the run evaluates, and the best value of ``eval.select``) is written to
``<job dir>/result.json`` when it ends; the CSV is then rebuilt from all of them, so it is current
after every job, even if the sweep is cut short. With ``eval.select`` the rows are sorted best first.
A job whose result cannot be read is a row with the status ``unreadable`` naming the file, and is
named on the console when the sweep ends.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from hydra.types import RunMode
from omegaconf import DictConfig, OmegaConf

from gantrain.evaluation.plan import higher_is_better
from gantrain.run.directory import atomic_write, display_path, read_jsonl

UNREADABLE = "unreadable"  # the status of a job whose result.json cannot be read
FIRST_COLUMNS = ["job", "overrides", "status", "run_dir", "step", "d_loss", "g_loss", "gp"]


class SweepSummary(Callback):
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode != RunMode.MULTIRUN:
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        row: dict[str, Any] = {
            "job": config.hydra.job.num,
            "overrides": " ".join(job_return.overrides or []),
            "status": job_return.status.name.lower(),
            "run_dir": str(job_dir),
        }
        if job_return.status == JobStatus.COMPLETED:
            row.update(final_metrics(job_dir))
        else:
            row["error"] = str(job_return._return_value)
        atomic_write(job_dir / "result.json", json.dumps(row) + "\n")
        select = OmegaConf.select(config, "eval.select")
        write_summary(Path(config.hydra.sweep.dir), select)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        sweep_dir = Path(config.hydra.sweep.dir)
        summary = sweep_dir / "summary.csv"
        if summary.is_file():
            print(f"Sweep summary (one row per job, with its run directory and final metrics): {display_path(summary)}")
        for row in read_results(sweep_dir):
            if row["status"] == UNREADABLE:
                print(f"gantrain: warning: job {row['job']}: {row['error']}", file=sys.stderr)


def final_metrics(run_dir: Path) -> dict[str, Any]:
    """The run's last metrics.jsonl record, and ``best_<metric>`` from its best checkpoint."""
    row: dict[str, Any] = {}
    records = read_jsonl(run_dir / "metrics.jsonl") if (run_dir / "metrics.jsonl").is_file() else []
    if records:
        row.update(records[-1])
        if isinstance(row.get("protocol"), dict):  # the final evaluation's card, one JSON text in the CSV
            row["protocol"] = json.dumps(row["protocol"], sort_keys=True)
    best = run_dir / "checkpoints" / "best" / "best.json"
    if best.is_file():
        try:
            record = json.loads(best.read_text())
            row[f"best_{record['metric']}"] = record["value"]
        except (OSError, ValueError, KeyError, TypeError) as err:
            row["error"] = f"cannot read {best} ({err})"
    return row


def read_results(sweep_dir: Path) -> list[dict]:
    """The ``result.json`` row of every job under ``sweep_dir``, in job order; a result that cannot
    be read is a row naming its job and the file, with the status ``unreadable``."""
    rows = []
    for path in sweep_dir.rglob("result.json"):
        try:
            row = json.loads(path.read_text())
            if not isinstance(row, dict) or not isinstance(row.get("job"), int):
                raise ValueError("not a job's result")
        except (OSError, ValueError) as err:
            job = int(path.parent.name) if path.parent.name.isdigit() else path.parent.name
            row = {
                "job": job,
                "status": UNREADABLE,
                "run_dir": str(path.parent),
                "error": f"cannot read {path} ({err})",
            }
        rows.append(row)
    return sorted(rows, key=lambda row: (0, row["job"], "") if isinstance(row["job"], int) else (1, 0, row["job"]))


def write_summary(sweep_dir: Path, select: str | None = None) -> Path:
    """Rebuild ``summary.csv`` from the ``result.json`` of every job under ``sweep_dir``, in job
    order, or best ``select`` first (jobs without a value last)."""
    rows = read_results(sweep_dir)
    if select is not None:
        sign = -1 if higher_is_better(select) else 1

        def rank(row: dict) -> tuple:
            value = row.get(f"best_{select}", row.get(select))
            if isinstance(value, (int, float)):
                return (False, sign * value)
            return (True, 0.0)

        rows.sort(key=rank)
    extra = sorted({k for row in rows for k in row} - set(FIRST_COLUMNS))
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=FIRST_COLUMNS + extra, restval="")
    writer.writeheader()
    writer.writerows(rows)
    path = sweep_dir / "summary.csv"
    atomic_write(path, text.getvalue())
    return path
