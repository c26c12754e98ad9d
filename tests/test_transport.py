"""Discriminator optimal transport (gantrain.evaluation.transport) on cases with a known answer.

With G the identity of a 1-D latent and D's logit ``-(x - mu)^2 / 2``, the cost
``|z - y| + (z - mu)^2 / (2k)`` of a sample y is least at ``mu + clip(y - mu, -k, k)``: DOT pulls the
samples farther than k from mu to distance k and leaves the others where they are. With a linear
logit ``a . x`` the effective Lipschitz constant is ``|a|``."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from gantrain import api
from gantrain.errors import ConfigError
from gantrain.evaluation.measure import evaluate
from gantrain.evaluation.transport import effective_lipschitz, move, transport
from gantrain.run.train import train
from tests.test_sampling import TOY, toy_run  # noqa: F401  (the fixture: one tiny ring8 run)
from tests.test_strategies import TWO_CPUS

MU = 0.5


def identity(dim: int) -> tf.keras.Model:
    z = tf.keras.Input((dim,))
    return tf.keras.Model(z, tf.keras.layers.Identity()(z))


def logit_model(dim: int, fn) -> tf.keras.Model:
    x = tf.keras.Input((dim,))
    return tf.keras.Model(x, tf.keras.layers.Lambda(fn)(x))


QUADRATIC = logit_model(1, lambda x: -0.5 * tf.square(x - MU))


@pytest.mark.parametrize("k", [0.5, 2.0])
def test_dot_moves_each_sample_to_the_minimum_of_its_cost(k):
    y = np.linspace(-3, 3, 61, dtype=np.float32)[:, None]  # 400 steps of about lr reach every minimum
    moved = move(identity(1), QUADRATIC, y, tf.constant(k), 400, tf.constant(0.01)).numpy()
    np.testing.assert_allclose(moved, MU + np.clip(y - MU, -k, k), atol=3 * 0.01)  # Adam hovers within ~lr


def test_the_effective_lipschitz_constant_of_a_linear_logit_is_its_slope():
    a = np.array([3.0, -4.0], np.float32)  # |a| = 5
    linear = logit_model(2, lambda x: tf.reduce_sum(x * a, axis=1, keepdims=True))
    k = effective_lipschitz(identity(2), linear, np.random.default_rng(0))
    assert 4.9 < k <= 5.0 + 1e-5  # the largest slope over 100 pairs comes close to the gradient's norm


def test_the_same_seed_moves_the_same_samples_and_every_sample_is_kept():
    noise = np.random.default_rng(0).normal(size=(30, 1)).astype(np.float32)
    a, b = (transport(identity(1), QUADRATIC, noise, seed=3, steps=20, batch=8) for _ in range(2))
    np.testing.assert_array_equal(a.x, b.x)
    assert a.x.shape == (30, 1) and a.acceptance == 1.0
    assert a.calls_per_sample == pytest.approx(20 + 2000 / 30)
    assert np.abs(a.x - MU).mean() < np.abs(noise - MU).mean()  # towards D's peak


def test_a_given_k_replaces_the_estimate():
    noise = np.random.default_rng(0).normal(size=(30, 1)).astype(np.float32)
    estimated = transport(identity(1), QUADRATIC, noise, seed=3, steps=20)
    k_eff = effective_lipschitz(identity(1), QUADRATIC, np.random.default_rng([3, 4]))  # transport's own draw
    given = transport(identity(1), QUADRATIC, noise, seed=3, steps=20, k=k_eff)
    np.testing.assert_array_equal(given.x, estimated.x)
    assert given.calls_per_sample == 20  # no pairs drawn to estimate it


def test_a_fraction_of_k_eff_is_that_fraction_of_the_estimate():
    noise = np.random.default_rng(0).normal(size=(30, 1)).astype(np.float32)
    k_eff = effective_lipschitz(identity(1), QUADRATIC, np.random.default_rng([3, 4]))
    fraction = transport(identity(1), QUADRATIC, noise, seed=3, steps=20, k_fraction=0.1)
    given = transport(identity(1), QUADRATIC, noise, seed=3, steps=20, k=0.1 * k_eff)
    np.testing.assert_array_equal(fraction.x, given.x)
    whole = transport(identity(1), QUADRATIC, noise, seed=3, steps=20)
    # A tenth of the constant pulls harder towards D's peak: the samples end nearer to it.
    assert np.abs(fraction.x - MU).mean() < np.abs(whole.x - MU).mean()
    assert fraction.calls_per_sample == whole.calls_per_sample  # the same pairs estimate k_eff


# -- In gantrain-eval and during training ---------------------------------------------------------


def test_gantrain_eval_moves_its_plain_samples(toy_run, tmp_path):  # noqa: F811
    plain, still, moved = (tmp_path / f"{name}.npz" for name in ("plain", "still", "moved"))
    evaluate(toy_run, num_samples=200, export=plain)
    # A step too small to move anything: DOT starts from the evaluation noise, sample for sample.
    evaluate(toy_run, num_samples=200, sampling="dot", dot_steps=1, dot_lr=1e-9, export=still)
    result = evaluate(toy_run, num_samples=200, sampling="dot", dot_steps=20, export=moved)
    np.testing.assert_allclose(np.load(still)["x"], np.load(plain)["x"], atol=1e-5)
    assert np.abs(np.load(moved)["x"] - np.load(plain)["x"]).max() > 1e-3
    assert result["acceptance"] == 1.0 and result["d_calls_per_sample"] == pytest.approx(20 + 2000 / 200)


def test_gantrain_eval_pulls_with_a_fraction_of_k_eff_and_its_card_says_so(toy_run, tmp_path):  # noqa: F811
    whole, tenth = tmp_path / "whole.npz", tmp_path / "tenth.npz"
    evaluate(toy_run, num_samples=200, sampling="dot", dot_steps=20, export=whole)
    result = evaluate(toy_run, num_samples=200, sampling="dot", dot_steps=20, dot_k_fraction=0.1, export=tenth)
    assert np.abs(np.load(tenth)["x"] - np.load(whole)["x"]).max() > 1e-3
    assert result["protocol"]["sampler"] == {
        "name": "dot",
        "dot_steps": 20,
        "dot_lr": 0.01,
        "dot_k": None,
        "dot_k_fraction": 0.1,
        "driven_generator": "ema",
    }


def test_evaluation_during_training_moves_as_gantrain_eval(tmp_path):
    run = tmp_path / "driven"
    train(api.compose([*TOY, "eval.every=20", "eval.num_samples=200", "eval.sampling=dot", "eval.dot_steps=10"]), run)
    during = next(
        row for row in map(json.loads, (run / "metrics.jsonl").read_text().splitlines()) if "acceptance" in row
    )
    after = evaluate(run, num_samples=200, sampling="dot", dot_steps=10)
    for key in ("modes", "hq", "rkl", "acceptance", "d_calls_per_sample"):
        assert during[key] == pytest.approx(after[key], rel=1e-6), key


@pytest.mark.parametrize(
    "options, message",
    [
        ({"dot_steps": 0}, "dot_steps: must be >= 1, got 0"),
        ({"dot_lr": 0.0}, "dot_lr: must be > 0, got 0.0"),
        ({"dot_k": -1.0}, "dot_k: must be > 0, got -1.0"),
        ({"dot_k_fraction": 0.0}, "dot_k_fraction: must be > 0, got 0.0"),
        (
            {"dot_k": 0.05, "dot_k_fraction": 0.1},
            "dot_k_fraction: applies to the estimated k_eff: give it or dot_k, not both",
        ),
    ],
)
def test_bad_dot_options_are_named(toy_run, options, message):  # noqa: F811
    (toy_run / "eval.json").unlink(missing_ok=True)
    with pytest.raises(ConfigError, match=f"^{message}$"):
        evaluate(toy_run, sampling="dot", **options)
    assert not (toy_run / "eval.json").exists()


def test_evaluation_during_a_mirrored_run_moves_as_in_a_default_run(tmp_path):
    options = [*TOY, "eval.every=20", "eval.num_samples=200", "eval.sampling=dot", "eval.dot_steps=10"]
    train(api.compose(options), tmp_path / "default")
    train(
        api.compose([*options, "strategy=mirrored", f"strategy.devices=[{','.join(TWO_CPUS)}]"]), tmp_path / "mirrored"
    )
    rows = [
        next(
            row
            for row in map(json.loads, (tmp_path / run / "metrics.jsonl").read_text().splitlines())
            if "acceptance" in row
        )
        for run in ("default", "mirrored")
    ]
    for key in ("modes", "hq", "rkl", "acceptance", "d_calls_per_sample"):
        assert rows[1][key] == pytest.approx(rows[0][key], rel=1e-6), key
