"""The protocol card: every result says how it was measured (``gantrain.evaluation.protocol``), in
gantrain-eval's output and export, in metrics.jsonl's evaluation rows and in a sweep's summary.csv."""

import csv
import json

import numpy as np
from omegaconf import OmegaConf

from gantrain.commands.sweep_summary import final_metrics, write_summary
from gantrain.evaluation.features import classifier
from gantrain.evaluation.features.stats_cache import arrays_digest, data_digest
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.protocol import INPUTS
from gantrain.run.directory import read_jsonl
from gantrain.run.train import train
from tests.conftest import TINY

FAST = ["train.batch_size=4", "train.n_critic=1"]
TOY = ["model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=200"]


def test_gantrain_eval_s_card_names_the_sampler_step_and_generator_and_goes_with_the_export(trained, tmp_path):
    run = trained([*TOY, "train.steps=4", "train.checkpoint_every=2", "train.ema=0.9"], tmp_path / "run")
    export = tmp_path / "samples.npz"
    result = evaluate(run, checkpoint=2, num_samples=40, export=export, sampling="drs", drs_percentile=80.0)
    card = result["protocol"]
    assert card == {
        "extractor": {"name": "points", "weights": None, "input": "the 2-D points themselves"},
        "real": {"dataset": "ring8", "split": "train", "examples": 40},
        "samples": 40,
        "noise_seed": 0,
        "sampler": {"name": "drs", "drs_percentile": 80.0, "driven_generator": "ema"},
        "truncation": None,
        "step": 2,
        "generator": "ema",
    }
    assert json.loads((run / "eval.json").read_text())["protocol"] == card
    with np.load(export) as stored:  # no pickle needed: the card is JSON text
        assert json.loads(str(stored["protocol"])) == card


def test_an_image_card_names_the_extractor_and_data_the_reference_statistics_were_computed_from(
    trained, tmp_path, mnist_npz
):
    image = ["model=dcgan", *TINY["dcgan"], *FAST, "train.steps=2", "dataset=mnist", f"dataset.path={mnist_npz}"]
    run = trained(image, tmp_path / "run")
    card = evaluate(run, num_samples=30, truncation=1.5)["protocol"]
    node = OmegaConf.load(run / ".hydra" / "config.yaml").dataset
    weights = arrays_digest(classifier.load_or_train(node).get_weights())
    assert card["extractor"] == {"name": "classifier", "weights": weights, "input": INPUTS["classifier"]}
    assert card["real"] == {"dataset": "mnist", "split": "train", "examples": 64, "data_sha256": data_digest(node)[0]}
    assert (card["samples"], card["truncation"], card["generator"]) == (30, 1.5, "raw")
    assert card["sampler"] == {"name": "none"}
    # The FID's reference statistics say they came from the same extractor weights and data.
    [stats] = mnist_npz.parent.glob("gantrain_stats_mnist_classifier_train_*.npz")
    with np.load(stats) as stored:
        source = json.loads(str(stored["key"]))
    assert (source["weights"], source["data_sha256"], source["examples"]) == (
        weights,
        card["real"]["data_sha256"],
        card["real"]["examples"],
    )


def test_evaluation_rows_of_metrics_jsonl_and_the_sweep_summary_carry_the_card(make_cfg, tmp_path):
    job = tmp_path / "sweep" / "0"
    train(make_cfg(*TOY, "train.steps=4", "train.log_every=1", "eval.every=2", "eval.num_samples=50"), job)
    rows = read_jsonl(job / "metrics.jsonl")
    assert [row["step"] for row in rows if "protocol" in row] == [2, 4]
    assert all(row["protocol"]["step"] == row["step"] and "hq" in row for row in rows if "protocol" in row)
    assert rows[-1]["protocol"]["samples"] == 50 and rows[-1]["protocol"]["generator"] == "raw"
    result = {"job": 0, "overrides": "", "status": "completed", "run_dir": str(job), **final_metrics(job)}
    (job / "result.json").write_text(json.dumps(result))
    [summary] = csv.DictReader(open(write_summary(job.parent)))
    assert json.loads(summary["protocol"]) == rows[-1]["protocol"]
