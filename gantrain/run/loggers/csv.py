"""``logger=csv``: ``<run>/metrics.csv``, one row per log step and one column per metric, for a
spreadsheet or ``pandas.read_csv``. The config and the preview grids are in the run directory
already (``.hydra/config.yaml``, ``samples/``).

A metric first logged later in the run (an evaluation's score) adds a column: the file is then
written anew with it. A step logged again (after a resume or a rollback to an earlier checkpoint)
replaces the rows from that step on, as metrics.jsonl does.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np

from gantrain.run.directory import atomic_write
from gantrain.run.loggers import LOGGERS, Logger, Opening


class CsvFile(Logger):
    def __init__(self, path: Path, start: int):
        self.path = path
        self.rows: list[dict[str, str]] = []
        self.columns: list[str] = ["step"]
        if path.is_file():  # a resumed run: the rows after its checkpoint are dropped, as from metrics.jsonl
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or self.columns)
                self.rows = [row for row in reader if int(row["step"]) <= start]
            self.rewrite()

    def metrics(self, step: int, record: dict[str, float]) -> None:
        row = {"step": str(step), **{name: str(float(value)) for name, value in record.items()}}
        kept = [r for r in self.rows if int(r["step"]) < step]
        new = [name for name in row if name not in self.columns]
        replaced = len(kept) < len(self.rows)
        self.rows = [*kept, row]
        self.columns += new
        if new or replaced or not self.path.exists():
            self.rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.columns, restval="").writerow(row)

    def rewrite(self) -> None:
        text = io.StringIO()
        writer = csv.DictWriter(text, self.columns, restval="")
        writer.writeheader()
        writer.writerows(self.rows)
        atomic_write(self.path, text.getvalue())

    def image(self, step: int, path: Path, pixels: np.ndarray) -> None:
        pass  # the grid is samples/step_NNNNNN.png already

    def close(self, failed: bool) -> None:
        pass  # every row is on disk once metrics() returns


@LOGGERS.register("csv")
def open_csv(opening: Opening) -> Logger:
    """``<run>/metrics.csv``."""
    return CsvFile(opening.run.root / "metrics.csv", opening.step)
