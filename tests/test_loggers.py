"""The ``logger`` group: each logger gets the metrics metrics.jsonl has, the config and the preview
grids, read back with its own library's reader; a resume continues the same W&B and MLflow run; a
missing extra is refused in one line before anything is written."""

from __future__ import annotations

import csv
import json
import struct
import sys
from pathlib import Path

import pytest

from gantrain import api
from gantrain.run.loggers.csv import CsvFile
from gantrain.run.train import train
from tests.conftest import TINY, gantrain_in_process

RUN = [
    "model=mlp",
    *TINY["mlp"],
    "dataset=ring8",
    "dataset.num_points=100",
    "train.batch_size=4",
    "train.n_critic=1",
    "train.log_every=1",
    "train.sample_every=2",
]


def jsonl(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def logged(tmp_path_factory) -> dict:
    """One run with csv, wandb (offline) and mlflow (a local file store): 3 steps, then resumed to 5."""
    root = tmp_path_factory.mktemp("loggers")
    run, tracking = root / "run", f"file:{root / 'mlruns'}"
    with pytest.MonkeyPatch.context() as env:
        for name, value in {
            "WANDB_MODE": "offline",
            "WANDB_SILENT": "true",
            "WANDB_CONSOLE": "off",
            "WANDB_DIR": str(root / "wandb_dir"),
            "WANDB_CONFIG_DIR": str(root / "wandb_config"),
            "WANDB_CACHE_DIR": str(root / "wandb_cache"),
            "WANDB_DATA_DIR": str(root / "wandb_data"),
            "MLFLOW_ALLOW_FILE_STORE": "true",  # MLflow 3 keeps the file store only on request
        }.items():
            env.setenv(name, value)
        overrides = [*RUN, "logger=[csv,wandb,mlflow]", f"logger.mlflow.tracking_uri={tracking}"]
        train(api.compose([*overrides, "train.steps=3"]), run)
        first = {name: (run / f"{name}.id").read_text() for name in ("wandb", "mlflow")}
        train(api.compose([*overrides, "train.steps=5"]), run, resume=True)
    return {"run": run, "tracking": tracking, "first_ids": first}


def test_csv_has_the_metrics_of_metrics_jsonl(logged):
    with open(logged["run"] / "metrics.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    expected = jsonl(logged["run"])
    assert [int(row["step"]) for row in rows] == [1, 2, 3, 4, 5] == [line["step"] for line in expected]
    for row, line in zip(rows, expected, strict=True):
        assert {name: float(value) for name, value in row.items() if name != "step"} == {
            name: value for name, value in line.items() if name != "step"
        }


def test_csv_adds_a_column_and_replaces_steps_logged_again(tmp_path):
    path = tmp_path / "metrics.csv"
    table = CsvFile(path, start=0)
    table.metrics(1, {"d_loss": 1.0})
    table.metrics(2, {"d_loss": 2.0, "fid": 9.5})  # an evaluation's score: a new column
    table.metrics(3, {"d_loss": 3.0})
    table.metrics(2, {"d_loss": 2.5})  # a rollback to step 1 logs step 2 again
    assert path.read_text().splitlines() == ["step,d_loss,fid", "1,1.0,", "2,2.5,"]
    CsvFile(path, start=1)  # a resume from step 1's checkpoint
    assert path.read_text().splitlines() == ["step,d_loss,fid", "1,1.0,"]


def test_mlflow_has_the_metrics_params_and_grids_in_one_run_across_the_resume(logged):
    from mlflow import MlflowClient

    client = MlflowClient(logged["tracking"])
    run_id = (logged["run"] / "mlflow.id").read_text().strip()
    assert logged["first_ids"]["mlflow"].strip() == run_id
    experiment = client.get_experiment_by_name("gantrain")
    assert [r.info.run_id for r in client.search_runs([experiment.experiment_id])] == [run_id]
    history = client.get_metric_history(run_id, "d_loss")
    assert [(m.step, m.value) for m in history] == [(line["step"], line["d_loss"]) for line in jsonl(logged["run"])]
    finished = client.get_run(run_id)
    assert finished.info.status == "FINISHED" and finished.info.run_name == "run"
    assert finished.data.params["train.steps"] == "3"  # the config as the run started
    assert finished.data.params["model.name"] == "mlp" and finished.data.params["train.augment"] == "[]"
    grids = [a.path for a in client.list_artifacts(run_id, "samples")]
    assert grids == [f"samples/step_00000{step}.png" for step in (2, 3, 4, 5)]


def wandb_records(path: Path):
    """The records of a W&B transaction log (``run-<id>.wandb``): LevelDB's log format (a 7-byte file
    header, then 32 KiB blocks of records, each with a 7-byte header, split across blocks when
    long), each record a ``wandb_internal_pb2.Record``. wandb ships no reader of its own."""
    from wandb.proto import wandb_internal_pb2

    data, block = path.read_bytes(), 32768
    assert data[:4] == b":W&B"
    position, parts = 7, b""
    while position + 7 <= len(data):
        if block - position % block < 7:  # a block's tail too short for a header is padding
            position += block - position % block
            continue
        _, length, kind = struct.unpack("<IHB", data[position : position + 7])
        parts += data[position + 7 : position + 7 + length]
        position += 7 + length
        if kind in (1, 4):  # a whole record, or the last part of one
            record = wandb_internal_pb2.Record()
            record.ParseFromString(parts)
            parts = b""
            yield record


def test_wandb_has_the_metrics_config_and_grids_in_one_run_across_the_resume(logged):
    run = logged["run"]
    run_id = (run / "wandb.id").read_text().strip()
    assert logged["first_ids"]["wandb"].strip() == run_id
    # Offline, each start of the process writes its own folder; wandb sync uploads both into the run.
    folders = sorted((run / "wandb").glob(f"offline-run-*-{run_id}"))
    assert len(folders) == 2
    metrics, grids, config = [], [], {}
    for folder in folders:
        for record in wandb_records(folder / f"run-{run_id}.wandb"):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                row = {
                    item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in record.history.item
                }
                if "d_loss" in row:
                    metrics.append((row["step"], row["d_loss"]))
                if "samples/path" in row:
                    grids.append(row["step"])
                    assert (folder / "files" / row["samples/path"]).is_file()
            elif kind == "run":
                config.update({item.key: json.loads(item.value_json) for item in record.run.config.update})
    assert metrics == [(line["step"], line["d_loss"]) for line in jsonl(run)]
    assert grids == [2, 3, 4, 5]
    assert config["train.steps"] == "3" and config["model.name"] == "mlp"


@pytest.mark.parametrize("name", ["wandb", "mlflow"])
def test_a_missing_extra_is_one_line_and_writes_nothing(tmp_path, name, capfd, monkeypatch):
    monkeypatch.setitem(sys.modules, name, None)  # what an import of an absent package raises
    code, _, err = gantrain_in_process(
        *RUN,
        "train.steps=1",
        f"logger=[tensorboard,{name}]",
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    line = (
        f'gantrain: error: logger: {name} needs the {name} package, not installed here; pip install "gantrain[{name}]"'
    )
    assert (code, err.strip()) == (2, line)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "overrides, named",
    [
        ("logger=[tensorbord,csv]", "logger: unknown option 'tensorbord'; did you mean tensorboard?"),
        (
            "logger=wandb +logger.wandb.projet=x",
            "logger.wandb.projet: not an option of logger 'wandb'; did you mean logger.wandb.project?",
        ),
    ],
)
def test_a_mistake_in_a_logger_names_it(tmp_path, overrides, named, capfd, monkeypatch):
    code, _, err = gantrain_in_process(
        *RUN,
        "train.steps=1",
        *overrides.split(),
        f"hydra.run.dir={tmp_path}/run",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    assert (code, err.strip()) == (2, f"gantrain: error: {named}")
    assert list(tmp_path.iterdir()) == []


def test_tensorboard_is_the_default_and_none_can_be_chosen(make_cfg):
    assert api.compose([]).logger == {"tensorboard": {}}
    assert "logger" not in api.compose(["logger=[]"])


def test_the_ending_names_tensorboard_only_for_a_run_that_logs_there(tmp_path):
    from gantrain.commands.train import ending

    assert "tensorboard --logdir" in ending({"step": 3}, tmp_path, 3, "ring8")
    assert "tensorboard --logdir" not in ending({"step": 3}, tmp_path, 3, "ring8", tensorboard=False)


def test_a_run_saved_without_a_logger_node_goes_on_logging_to_tensorboard(tmp_path, make_cfg):
    """Runs made before loggers were a group saved no ``logger`` node, and logged to tb/."""
    from omegaconf import OmegaConf, open_dict

    run = tmp_path / "run"
    train(make_cfg(*RUN, "train.steps=2"), run)
    saved = OmegaConf.load(run / ".hydra" / "config.yaml")
    with open_dict(saved):
        del saved["logger"]
    OmegaConf.save(saved, run / ".hydra" / "config.yaml")
    before = len(list((run / "tb").iterdir()))
    saved.train.steps = 3
    train(saved, run, resume=True)
    assert len(list((run / "tb").iterdir())) == before + 1  # this start's events file


def test_only_the_chief_of_a_multi_worker_run_logs_to_a_run_outside_its_directory(tmp_path, monkeypatch):
    """The other workers write their own copies of the run directory (csv, tensorboard), never a
    second W&B or MLflow run."""
    from omegaconf import OmegaConf

    from gantrain.run.directory import RunDir
    from gantrain.run.loggers import Loggers, Opening

    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    node = OmegaConf.create(
        {"csv": {}, "wandb": {"mode": "disabled"}, "mlflow": {"tracking_uri": f"file:{tmp_path / 'mlruns'}"}}
    )
    worker = RunDir(tmp_path / "run" / "workers" / "1")
    with Loggers(node, Opening(worker, OmegaConf.create({}), {}, 0, False, chief=False)) as loggers:
        loggers.metrics(1, {"d_loss": 1.0})
    assert [p.name for p in worker.root.iterdir()] == ["metrics.csv"]
    assert not (tmp_path / "mlruns").exists()
