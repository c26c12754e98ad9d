"""Discriminator-driven sampling (gantrain.evaluation.rejection) on a case with a known answer: a 1-D generator
N(0.5, 1.5^2), data N(0, 1), and the ideal discriminator log p_data / p_G. The accepted samples
must follow the data (two-sample Kolmogorov–Smirnov test), where G's own samples do not."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf
from scipy import stats

from gantrain import api
from gantrain.data import DATASETS
from gantrain.errors import ConfigError
from gantrain.evaluation.draw import held_out_examples
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.rejection import calibrate, drive
from gantrain.models import build_models
from gantrain.run.train import train
from tests.conftest import TINY, assert_same_state

MEAN, STD = 0.5, 1.5  # G's distribution; the data's is N(0, 1)


def propose(k: int, rng: np.random.Generator) -> np.ndarray:
    return rng.normal(MEAN, STD, (k, 1)).astype(np.float32)


def ideal_logits(x: np.ndarray) -> np.ndarray:
    x = x[:, 0].astype(np.float64)
    return stats.norm.logpdf(x) - stats.norm.logpdf(x, MEAN, STD)


HELD_OUT = np.random.default_rng(1).normal(0, 1, (10_000, 1)).astype(np.float32)
DATA = np.random.default_rng(2).normal(0, 1, 5_000)


def test_generator_samples_alone_fail_the_test():
    """The test can tell G from the data at this sample size."""
    assert stats.ks_2samp(propose(2_000, np.random.default_rng(0))[:, 0], DATA).pvalue < 1e-6


@pytest.mark.parametrize("method, options", [("drs", {"percentile": None}), ("mh", {"steps": 50})], ids=["drs", "mh"])
def test_accepted_samples_follow_the_data(method, options):
    sampled = drive(propose, ideal_logits, HELD_OUT, method, n=2_000, seed=0, **options)
    assert sampled.x.shape == (2_000, 1)
    assert stats.ks_2samp(sampled.x[:, 0], DATA).pvalue > 0.01
    assert 0 < sampled.acceptance < 1 and sampled.calls_per_sample > 1


def test_a_higher_drs_percentile_keeps_fewer_and_likelier_samples():
    median = drive(propose, ideal_logits, HELD_OUT, "drs", n=2_000, seed=0, percentile=50)
    top = drive(propose, ideal_logits, HELD_OUT, "drs", n=2_000, seed=0, percentile=95)
    assert top.acceptance < median.acceptance < 0.6
    assert np.std(top.x) < np.std(median.x) < 1  # towards where the data is densest relative to G


def test_exact_rejection_sampling_of_a_hopeless_generator_stops_with_advice():
    far = lambda k, rng: rng.normal(6.0, 1.0, (k, 1)).astype(np.float32)  # noqa: E731
    logits = lambda x: stats.norm.logpdf(x[:, 0]) - stats.norm.logpdf(x[:, 0], 6.0)  # noqa: E731
    with pytest.raises(ConfigError, match=r"^drs_percentile: rejection sampling kept \d+ of 10000 proposals"):
        drive(far, logits, HELD_OUT, "drs", n=10, seed=0, percentile=None)


def test_calibration_recovers_the_logistic_map_of_the_logits():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2, 200_000)
    real = rng.random(len(logits)) < 1 / (1 + np.exp(-(2.0 * logits + 1.0)))  # P(real | logit)
    calibration = calibrate(logits[real], logits[~real])
    assert calibration.scale == pytest.approx(2.0, rel=0.03)
    assert calibration.shift == pytest.approx(1.0, abs=0.03)


def test_the_same_seed_gives_the_same_samples():
    a = drive(propose, ideal_logits, HELD_OUT, "mh", n=100, seed=3, steps=5)
    b = drive(propose, ideal_logits, HELD_OUT, "mh", n=100, seed=3, steps=5)
    np.testing.assert_array_equal(a.x, b.x)


# -- In gantrain-eval and during training ---------------------------------------------------------

TOY = [
    "model=mlp",
    *TINY["mlp"],
    "loss=nsgan",
    "dataset=ring8",
    "dataset.num_points=500",
    "train.batch_size=16",
    "train.n_critic=1",
    "train.steps=20",
    "train.checkpoint_every=10",
    "train.sample_every=100",
]


@pytest.fixture(scope="module")
def toy_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("sampling") / "run"
    train(api.compose(TOY), run)
    return run


@pytest.mark.parametrize("method", ["drs", "mh"])
def test_gantrain_eval_reports_what_choosing_cost(toy_run, method):
    result = evaluate(toy_run, num_samples=200, sampling=method, mh_steps=5)
    assert {"modes", "hq", "rkl", "acceptance", "d_calls_per_sample"} <= set(result)
    assert 0 < result["acceptance"] <= 1 and result["d_calls_per_sample"] > 1
    assert json.loads((toy_run / "eval.json").read_text()) == result


def test_held_out_examples_are_ones_training_did_not_see(mnist_npz):
    toy = held_out_examples(OmegaConf.create({"name": "ring8", "num_points": 500, "std": 0.01, "seed": 0}))
    trained = DATASETS.build(OmegaConf.create({"name": "ring8", "num_points": 500, "std": 0.01, "seed": 0})).x
    assert toy.shape == (500, 2) and not np.isin(toy, trained).any()
    digits = held_out_examples(OmegaConf.create({"name": "mnist", "path": str(mnist_npz), "split": "train"}))
    test_split = DATASETS.build(OmegaConf.create({"name": "mnist", "path": str(mnist_npz), "split": "test"})).x
    np.testing.assert_array_equal(digits, test_split.astype(np.float32) / 127.5 - 1.0)  # in the model's range


def test_evaluation_during_training_samples_as_gantrain_eval_and_leaves_training_alone(tmp_path):
    options = [*TOY, "eval.every=20", "eval.num_samples=200", "eval.sampling=drs"]
    train(api.compose(options), tmp_path / "driven")
    train(api.compose(TOY), tmp_path / "plain")
    assert_same_state(
        str(tmp_path / "driven" / "checkpoints" / "ckpt-20"), str(tmp_path / "plain" / "checkpoints" / "ckpt-20")
    )
    logged = [json.loads(line) for line in (tmp_path / "driven" / "metrics.jsonl").read_text().splitlines()]
    during = next(row for row in logged if "acceptance" in row)
    after = evaluate(tmp_path / "driven", num_samples=200, sampling="drs")
    for key in ("modes", "hq", "rkl", "acceptance", "d_calls_per_sample"):
        assert during[key] == pytest.approx(after[key], rel=1e-6), key


def test_sampling_needs_a_discriminator_of_single_samples(tmp_path, toy_run):
    packed = tmp_path / "packed"
    train(api.compose([*TOY, "train.pack=2", "train.steps=2"]), packed)
    with pytest.raises(ConfigError, match=r"^sampling: this run's D judges packs of 2 samples \(train.pack\)"):
        evaluate(packed, sampling="drs")
    # A checkpoint that holds G alone.
    generator_only = tmp_path / "generator_only"
    shutil.copytree(toy_run / ".hydra", generator_only / ".hydra")
    cfg = OmegaConf.load(toy_run / ".hydra" / "config.yaml")
    generator, _ = build_models(cfg.model, (2,))
    tf.train.CheckpointManager(tf.train.Checkpoint(generator=generator), generator_only / "checkpoints", 1).save(20)
    for method in ("mh", "dot"):
        with pytest.raises(ConfigError, match="^sampling: .*ckpt-20 holds no discriminator to choose samples with"):
            evaluate(generator_only, sampling=method)
    assert not (generator_only / "eval.json").exists() and not (packed / "eval.json").exists()
    with pytest.raises(ConfigError, match="^sampling: unknown sampler 'best'; known: none, drs, mh, dot$"):
        evaluate(toy_run, sampling="best")


def test_images_are_chosen_by_d_too(tmp_path, mnist_npz):
    run = tmp_path / "digits"
    train(
        api.compose(
            [
                "model=dcgan",
                *TINY["dcgan"],
                f"dataset.path={mnist_npz}",
                "train.steps=2",
                "train.batch_size=8",
                "train.n_critic=1",
            ]
        ),
        run,
    )
    for method in ("drs", "dot"):
        export = tmp_path / f"{method}.npz"
        result = evaluate(run, num_samples=40, features="none", sampling=method, dot_steps=3, export=export)
        assert np.load(export)["x"].shape == (40, 28, 28, 1) and 0 < result["acceptance"] <= 1, method


def test_a_run_trained_with_augmentation_is_refused_d_driven_sampling(tmp_path, mnist_npz, capsys):
    """Its D has judged augmented images only: its logit on a clean sample is no density ratio."""
    from gantrain.commands import evaluate as eval_command
    from gantrain.commands import generate as generate_command

    augmented = [
        "model=dcgan",
        *TINY["dcgan"],
        f"dataset.path={mnist_npz}",
        "train.batch_size=8",
        "train.n_critic=1",
        "train.augment=[translation]",
    ]
    run = tmp_path / "augmented"
    train(api.compose([*augmented, "train.steps=1"]), run)
    capsys.readouterr()
    for method in ("drs", "mh", "dot"):
        for main, args in ((eval_command.main, []), (generate_command.main, [f"out={tmp_path / 'out'}"])):
            with pytest.raises(SystemExit) as exit_:
                main(
                    [f"run_dir={run}", f"sampling={method}", "num_samples=20", "features=none"][: 3 if args else 4]
                    + args
                )
            err = capsys.readouterr().err.strip().splitlines()
            assert exit_.value.code == 2 and len(err) == 1, err
            assert err[0].endswith(
                "error: sampling: this run's D was trained on augmented images "
                "(train.augment=[translation]) and does not judge clean samples; "
                "discriminator-driven sampling needs a run trained without train.augment"
            ), err
    assert not (run / "eval.json").exists() and not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"^eval.sampling: this run's D was trained on augmented images"):
        train(api.compose([*augmented, "train.steps=2", "eval.every=1", "eval.sampling=dot"]), tmp_path / "during")
    assert not (tmp_path / "during").exists()


def test_d_driven_sampling_of_an_averaged_run_moves_the_generator_driven_generator_names(
    trained, tmp_path, monkeypatch
):
    """With train.ema, D's choices apply to the moving average (ema, the default) or to the G D was
    trained against (raw); the card says which; any other value is one line naming the key."""
    import gantrain.evaluation.draw as draw_module
    from tests.conftest import checkpoint_values

    run = trained([*TOY, "train.ema=0.5"], tmp_path / "run")
    driven, seen = draw_module.driven_draw, []

    def spy(generator, *args, **kwargs):
        seen.append(generator.get_weights())
        return driven(generator, *args, **kwargs)

    monkeypatch.setattr(draw_module, "driven_draw", spy)
    cards = [
        evaluate(run, num_samples=20, sampling="dot", dot_steps=2, **which)["protocol"]
        for which in ({}, {"driven_generator": "raw"})
    ]
    stored = checkpoint_values(str(sorted((run / "checkpoints").glob("ckpt-*.index"))[-1]).removesuffix(".index"))

    def weights_of(prefix: str) -> list[np.ndarray]:
        return [value for key, value in stored.items() if key.startswith(prefix)]

    def held_in(weights, arrays) -> bool:
        return all(any(w.shape == a.shape and np.array_equal(w, a) for a in arrays) for w in weights)

    # G's own weights are stored where the checkpoint first meets them: as G's optimizer's variables.
    average, raw = weights_of("ema_generator/"), weights_of("g_optimizer/_trainable_variables/")
    assert held_in(seen[0], average) and not held_in(seen[0], raw)
    assert held_in(seen[1], raw) and not held_in(seen[1], average)
    assert [card["generator"] for card in cards] == ["ema", "raw"]
    assert [card["sampler"]["driven_generator"] for card in cards] == ["ema", "raw"]
    with pytest.raises(ConfigError, match="^driven_generator: must be one of ema, raw, got mean$"):
        evaluate(run, num_samples=20, sampling="dot", driven_generator="mean")
