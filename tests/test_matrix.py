"""Every loss x penalty x model (and aux=gon) trains two steps with finite losses and weights."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.auxiliary import AUXILIARIES
from gantrain.losses import LOSSES
from gantrain.models import MODELS, build_auxiliary
from gantrain.step import make_train_step

LOSS_NAMES = LOSSES.names()
PENALTIES = [{"penalty": "none"}, {"penalty": "gp"}, {"penalty": "gp", "one_sided": True},
             {"penalty": "dragan"}, {"penalty": "r1"}]
MODEL_NODES = {
    "mlp": {"z_dim": 3, "g_hidden": [8], "d_hidden": [8]},
    "dcgan": {"z_dim": 3, "g_channels": 2, "d_channels": 2, "kernel_size": 3},
    "resnet": {"z_dim": 3, "g_channels": 2, "d_channels": 2},
}
# Each model on one example shape in the full matrix, and on every shape kind below.
MAIN_SHAPE = {"mlp": (2,), "dcgan": (8, 8, 1), "resnet": (8, 8, 3)}
SHAPES = {"mlp": [(2,), (8, 8, 1), (8, 8, 3)], "dcgan": [(8, 8, 1), (9, 9, 3)], "resnet": [(8, 8, 1), (9, 9, 3)]}


def tiny_data(shape):
    rng = np.random.default_rng(0)
    if len(shape) == 1:
        return tf.constant(rng.normal(size=(32, *shape)), tf.float32)
    return tf.constant(rng.integers(0, 256, size=(32, *shape)), tf.uint8)


def two_steps(model: str, shape, loss: dict, aux: str | None = None, spectral_norm: bool = False):
    keras.utils.set_random_seed(0)
    node = OmegaConf.create({"name": model, "d_spectral_norm": spectral_norm, **MODEL_NODES[model]})
    generator, discriminator = MODELS.build(node, data_shape=shape)
    extras = {}
    if aux is not None:
        objective = AUXILIARIES.build(OmegaConf.create({"name": aux}))
        extras = dict(aux_objective=objective, aux_network=build_auxiliary(node, shape, objective.heads),
                      aux_optimizer=keras.optimizers.Adam(1e-3))
    step = make_train_step(
        generator=generator, discriminator=discriminator,
        g_optimizer=keras.optimizers.Adam(1e-3), d_optimizer=keras.optimizers.Adam(1e-3),
        objective=LOSSES.build(OmegaConf.create(loss)), data=tiny_data(shape),
        rng=tf.random.Generator.from_seed(0), batch_size=4, n_critic=2,
        strategy=tf.distribute.get_strategy(), **extras,
    )
    metrics = {name: float(value) for name, value in step(2).items()}
    assert all(np.isfinite(v) for v in metrics.values()), metrics
    for model_ in (generator, discriminator, *extras.values()):
        for w in getattr(model_, "weights", []):
            assert np.isfinite(w.numpy()).all()
    return metrics


@pytest.mark.parametrize("model", list(MODEL_NODES))
@pytest.mark.parametrize("penalty", PENALTIES, ids=lambda p: "-".join(str(v) for v in p.values()))
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_loss_penalty_model(loss, penalty, model):
    metrics = two_steps(model, MAIN_SHAPE[model], {"name": loss, **penalty})
    assert ("gp" in metrics) == (penalty["penalty"] != "none")


@pytest.mark.parametrize("model, shape", [(m, s) for m in SHAPES for s in SHAPES[m]])
def test_every_shape_with_spectral_norm(model, shape):
    two_steps(model, shape, {"name": "hinge"}, spectral_norm=True)


@pytest.mark.parametrize("model", list(MODEL_NODES))
@pytest.mark.parametrize("loss", ["nsgan", "wgan_gp"])
def test_gon(model, loss):
    assert "aux_loss" in two_steps(model, MAIN_SHAPE[model], {"name": loss}, aux="gon")
