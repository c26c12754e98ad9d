"""Evaluations during training, the best checkpoint, and sweeps that optimise a metric."""

import csv
import json
import re

import pytest

from gantrain.commands.sweep_summary import write_summary
from gantrain.errors import ConfigError, GantrainError
from gantrain.evaluation.measure import evaluate
from gantrain.run.train import train
from tests.conftest import TINY, gantrain_in_process

TOY = [
    "model=mlp",
    *TINY["mlp"],
    "dataset=grid25",
    "dataset.num_points=500",
    "train.batch_size=16",
    "train.n_critic=1",
    "train.g_lr=5e-3",
    "train.d_lr=5e-3",
    "train.log_every=100",
]


def test_metrics_every_n_steps_and_the_best_checkpoint(tmp_path, make_cfg):
    run = tmp_path / "run"
    cfg = make_cfg(
        *TOY, "train.steps=30", "eval.every=10", "eval.num_samples=300", "eval.select=rkl", "train.checkpoint_every=100"
    )
    result = train(cfg, run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [10, 20, 30]  # evaluations are logged even off log_every
    assert all({"modes", "hq", "rkl", "precision", "recall", "density", "coverage"} <= set(r) for r in records)
    best = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    assert best["metric"] == "rkl" and best["value"] == min(r["rkl"] for r in records)
    assert result["best_rkl"] == best["value"]
    # The rolling checkpoints are at 0 and 30 only; the best one lives apart, and gantrain-eval on
    # it reproduces the training-time numbers (the same evaluation noise).
    again = evaluate(run, num_samples=300, checkpoint="best")
    assert again["step"] == best["step"] and again["rkl"] == pytest.approx(best["value"], abs=1e-9)


def test_steps_per_sec_counts_steps_and_not_the_evaluation(tmp_path, make_cfg, monkeypatch):
    """The first evaluation of an MNIST run trains the feature classifier for minutes: here the real
    evaluation is made that slow by a pause after it, and the rate logged with it stays the steps'."""
    import time

    from gantrain.run.duties import Evaluation

    pause = 3.0
    evaluate_ = Evaluation.__call__

    def slow_evaluation(*args):
        scores = evaluate_(*args)
        time.sleep(pause)
        return scores

    monkeypatch.setattr(Evaluation, "__call__", slow_evaluation)
    run = tmp_path / "run"
    train(make_cfg(*TOY, "train.steps=4", "train.log_every=2", "eval.every=4", "eval.num_samples=200"), run)
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [2, 4]
    # Steps 3 and 4 (traced at step 1) of a tiny network take far less than the pause.
    assert 2 / records[1]["steps_per_sec"] < pause / 2


def test_resume_keeps_competing_with_the_best_so_far(tmp_path, make_cfg):
    run = tmp_path / "run"
    options = [*TOY, "eval.every=10", "eval.num_samples=200", "eval.select=coverage", "train.checkpoint_every=10"]
    train(make_cfg(*options, "train.steps=20"), run)
    before = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    result = train(make_cfg(*options, "train.steps=40"), run, resume=True)
    after = json.loads((run / "checkpoints" / "best" / "best.json").read_text())
    assert after["value"] >= before["value"] and result["best_coverage"] == after["value"]
    assert len(list((run / "checkpoints" / "best").glob("ckpt-*.index"))) == 1


@pytest.mark.parametrize(
    "overrides, message",
    [
        (
            ["eval.every=10", "eval.select=fid"],
            "^eval.select: 'fid' is not measured here; "
            "choose from modes, hq, rkl, precision, recall, density, coverage$",
        ),
        (["eval.select=hq"], "^eval.select: needs eval.every"),
        (["eval.every=0"], "^eval.every: must be >= 1"),
        (["eval.features=vgg"], "^eval.features: unknown extractor 'vgg'"),
    ],
)
def test_bad_eval_options_name_their_key(tmp_path, make_cfg, overrides, message):
    with pytest.raises(ConfigError, match=message):
        train(make_cfg(*TOY, "train.steps=2", *overrides), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_summary_is_sorted_by_the_selected_metric(tmp_path):
    for job, value in enumerate([0.5, 0.9, None, 0.7]):
        row = {"job": job, "overrides": f"x={job}", "status": "completed"}
        if value is not None:
            row["best_hq"] = value
        (tmp_path / str(job)).mkdir()
        (tmp_path / str(job) / "result.json").write_text(json.dumps(row))
    with open(write_summary(tmp_path, "hq")) as f:
        assert [int(r["job"]) for r in csv.DictReader(f)] == [1, 3, 0, 2]  # higher hq first, none last
    with open(write_summary(tmp_path, "rkl")) as f:  # lower is better; no job has it: job order
        assert [int(r["job"]) for r in csv.DictReader(f)] == [0, 1, 2, 3]


@pytest.mark.slow
def test_optuna_example_optimises_the_selected_metric(tmp_path, capfd, monkeypatch):
    """Through the real entry point in this process (the console script's sweeps are test_cli.py's)."""
    sweep = tmp_path / "sweep"
    code, _, err = gantrain_in_process(
        "-m",
        "experiment=grid25",
        "hparams_search=grid25_optuna",
        "hydra.sweeper.n_trials=2",
        *TINY["mlp"],
        "dataset.num_points=500",
        "train.steps=20",
        "train.batch_size=16",
        "eval.every=10",
        "eval.num_samples=200",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    rows = list(csv.DictReader(open(sweep / "summary.csv")))
    assert len(rows) == 2 and all(r["status"] == "completed" for r in rows)
    best = [float(r["best_hq"]) for r in rows]
    assert best == sorted(best, reverse=True)
    optuna_result = (sweep / "optimization_results.yaml").read_text()
    assert f"best_value: {best[0]}" in optuna_result


def test_missing_inception_weights_stop_the_run_before_it_starts(tmp_path, make_cfg, cifar_archive, monkeypatch):
    import urllib.error

    from gantrain.errors import GantrainError

    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(
        "urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(urllib.error.URLError("offline"))
    )
    cfg = make_cfg(
        "model=dcgan",
        *TINY["dcgan"],
        "train.steps=2",
        "dataset=cifar10",
        f"dataset.path={cifar_archive}",
        "eval.every=1",
    )
    with pytest.raises(GantrainError, match="put inception_v3_weights_tf_dim_ordering_tf_kernels.h5 in"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_a_best_record_that_cannot_be_read_stops_the_resume_naming_it(tmp_path, make_cfg):
    run = tmp_path / "run"
    options = [*TOY, "eval.every=5", "eval.num_samples=100", "eval.select=rkl"]
    train(make_cfg(*options, "train.steps=5"), run)
    record = run / "checkpoints" / "best" / "best.json"
    record.write_text('{"metric": "rkl", "val')  # cut short
    with pytest.raises(GantrainError, match=f"^{re.escape(str(record))} cannot be read"):
        train(make_cfg(*options, "train.steps=10"), run, resume=True)
