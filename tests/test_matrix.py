"""Every loss, penalty and model (and aux=gon) trains two steps with finite losses and weights."""

import numpy as np
import pytest
import tensorflow as tf

from gantrain.training.losses import LOSSES
from tests.conftest import build_step, overrides_of

LOSS_NAMES = LOSSES.names()
PENALTIES = [
    {"penalty": "none"},
    {"penalty": "gp"},
    {"penalty": "gp", "one_sided": True},
    {"penalty": "dragan"},
    {"penalty": "r1"},
    {"penalty": "r1r2"},
]
MODEL_NODES = {
    "mlp": {"z_dim": 3, "g_hidden": [8], "d_hidden": [8]},
    "dcgan": {"z_dim": 3, "g_channels": 2, "d_channels": 2, "kernel_size": 3},
    "resnet": {"z_dim": 3, "g_channels": 2, "d_channels": 2},
    "r3gan": {"z_dim": 3, "widths": [4, 2, 2], "blocks": [1, 1, 1], "cardinality": [2, 2, 1]},
}
# Each model on one example shape in the full matrix, and on every shape kind below.
MAIN_SHAPE = {"mlp": (2,), "dcgan": (8, 8, 1), "resnet": (8, 8, 3), "r3gan": (8, 8, 3)}
SHAPES = {
    "mlp": [(2,), (8, 8, 1), (8, 8, 3)],
    "dcgan": [(8, 8, 1), (9, 9, 3)],
    "resnet": [(8, 8, 1), (9, 9, 3)],
    "r3gan": [(8, 8, 1), (16, 16, 3)],
}


def tiny_data(shape):
    rng = np.random.default_rng(0)
    if len(shape) == 1:
        return tf.constant(rng.normal(size=(32, *shape)), tf.float32)
    return tf.constant(rng.integers(0, 256, size=(32, *shape)), tf.uint8)


# The MLP's cases run the step compiled, as train() does (in the loss x penalty product, those on
# its diagonal: loss i with penalty i mod 6), so every loss, penalty and aux network goes through
# tf.function, each loss and each penalty at least once. The other cases run the same step eagerly:
# the same arithmetic without the trace, 1.4 s of a 1.6 s MLP case and 3 to 10 s for a
# convolutional model's double backward pass; each of these models is traced and trained with a
# penalty in test_train.py, test_r3gan.py and the resume tests.
TRACED = {"mlp"}


def on_the_diagonal(loss: str, penalty: dict) -> bool:
    return LOSS_NAMES.index(loss) % len(PENALTIES) == PENALTIES.index(penalty)


def two_steps(
    model: str,
    shape,
    loss: dict,
    aux: str | None = None,
    spectral_norm: bool = False,
    traced: bool | None = None,
):
    node = {"name": model, "d_spectral_norm": spectral_norm, **MODEL_NODES[model]}
    overrides = [
        *overrides_of("model", node),
        *overrides_of("loss", loss),
        "train.batch_size=4",
        "train.n_critic=2",
        "train.g_lr=1e-3",
        "train.d_lr=1e-3",
        *([f"aux={aux}"] if aux else []),
    ]
    gan, step = build_step(overrides, tiny_data(shape))
    tf.config.run_functions_eagerly(not (model in TRACED if traced is None else traced))
    try:
        metrics = {name: float(value) for name, value in step(2).items()}
    finally:
        tf.config.run_functions_eagerly(False)
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    networks = [gan.generator, gan.discriminator] + ([gan.gon.network] if gan.gon else [])
    for network in networks:
        for w in network.weights:
            assert np.isfinite(w.numpy()).all()
    return metrics


# Losses are per-example functions of D's logits (each checked against hand-computed values in
# test_losses.py) and penalties act on D's input gradient, whatever the loss. So the full
# loss x penalty product runs on the MLP, and each convolutional model meets every loss once and
# every penalty once (the penalty's double backward pass through its layers is what differs).
COMBINATIONS = (
    [("mlp", loss, penalty) for loss in LOSS_NAMES for penalty in PENALTIES]
    + [(model, loss, {"penalty": "none"}) for model in ("dcgan", "resnet", "r3gan") for loss in LOSS_NAMES]
    + [(model, "hinge", penalty) for model in ("dcgan", "resnet", "r3gan") for penalty in PENALTIES[1:]]
)


@pytest.mark.parametrize(
    "model, loss, penalty",
    COMBINATIONS,
    ids=[f"{m}-{loss}-{'-'.join(str(v) for v in p.values())}" for m, loss, p in COMBINATIONS],
)
def test_loss_penalty_model(loss, penalty, model):
    traced = model in TRACED and on_the_diagonal(loss, penalty)
    metrics = two_steps(model, MAIN_SHAPE[model], {"name": loss, **penalty}, traced=traced)
    assert ("gp" in metrics) == (penalty["penalty"] != "none")


def test_the_traced_cases_cover_every_loss_and_every_penalty():
    diagonal = [(loss, penalty) for loss in LOSS_NAMES for penalty in PENALTIES if on_the_diagonal(loss, penalty)]
    assert {loss for loss, _ in diagonal} == set(LOSS_NAMES)
    assert [penalty for penalty in PENALTIES if any(p == penalty for _, p in diagonal)] == PENALTIES


@pytest.mark.parametrize("model, shape", [(m, s) for m in SHAPES for s in SHAPES[m]])
def test_every_shape_with_spectral_norm(model, shape):
    two_steps(model, shape, {"name": "hinge"}, spectral_norm=True)


@pytest.mark.parametrize("model", list(MODEL_NODES))
@pytest.mark.parametrize("loss", ["nsgan", "wgan_gp"])
def test_gon(model, loss):
    assert "aux_loss" in two_steps(model, MAIN_SHAPE[model], {"name": loss}, aux="gon")
