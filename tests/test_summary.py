"""The sweep summary: a job whose result cannot be read is named, and the files it is built from are
written under names no other writer uses."""

from __future__ import annotations

import csv
import json
import logging
import os

from omegaconf import OmegaConf

from gantrain.commands.sweep_summary import SweepSummary, write_summary
from gantrain.run import directory as run_dir
from gantrain.run.directory import MetricsLog, atomic_write


def test_a_result_that_cannot_be_read_is_a_row_and_named_on_the_console(tmp_path, capsys):
    for job in (0, 1, 2):
        (tmp_path / str(job)).mkdir()
        atomic_write(
            tmp_path / str(job) / "result.json",
            json.dumps({"job": job, "status": "completed", "run_dir": str(tmp_path / str(job)), "step": 3}),
        )
    torn = tmp_path / "1" / "result.json"
    torn.write_text('{"job": 1, "stat')
    rows = list(csv.DictReader(open(write_summary(tmp_path, "hq"))))
    assert [(row["job"], row["status"]) for row in rows] == [
        ("0", "completed"),
        ("1", "unreadable"),
        ("2", "completed"),
    ]
    assert rows[1]["error"].startswith(f"cannot read {torn} (")
    config = OmegaConf.create({"hydra": {"sweep": {"dir": str(tmp_path)}}})
    SweepSummary().on_multirun_end(config)
    assert f"gantrain: warning: job 1: cannot read {torn} (" in capsys.readouterr().err


def test_writers_of_one_file_never_share_a_temporary_file(tmp_path, monkeypatch):
    """A second job writes summary.csv while the first is between writing and renaming."""
    target, replace, renamed = tmp_path / "summary.csv", os.replace, []

    def another_writer_first(source, destination):
        monkeypatch.setattr(run_dir.os, "replace", replace)
        atomic_write(target, "job 1's summary")
        renamed.append(str(source))
        replace(source, destination)

    monkeypatch.setattr(run_dir.os, "replace", another_writer_first)
    atomic_write(target, "job 0's summary")
    assert target.read_text() == "job 0's summary"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.csv"]
    assert str(os.getpid()) in renamed[0]


def test_a_malformed_line_of_metrics_jsonl_is_reported_not_dropped_silently(tmp_path, caplog):
    metrics = tmp_path / "metrics.jsonl"
    metrics.write_text('{"step": 1, "d_loss": 0.5}\n[1, 2]\n{"step": 2, "d_lo\n{"step": 3, "d_loss": 0.25}\n')
    with caplog.at_level(logging.WARNING):
        MetricsLog(metrics).truncate_after(2)
    assert [json.loads(line) for line in metrics.read_text().splitlines()] == [{"step": 1, "d_loss": 0.5}]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("metrics.jsonl: line 2 is not a JSON object" in w for w in warnings), warnings
    assert any("metrics.jsonl: line 3 is not a JSON object" in w for w in warnings), warnings
