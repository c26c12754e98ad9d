"""Strategies: a mirrored step over two (logical CPU) replicas equals a single-device step, and
two workers on localhost train in lockstep."""

from __future__ import annotations

import json
import socket
import subprocess

import keras
import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.models import MODELS
from gantrain.run.strategies import STRATEGIES
from gantrain.run.train import train
from tests.conftest import (
    COMMAND,
    TINY,
    assert_same_state,
    assert_same_step,
    build_step,
    cli_env,
    overrides_of,
)

TWO_CPUS = ["/cpu:0", "/cpu:1"]


def one_step(strategy, model: dict, shape, data, loss: dict, init=None):
    """One training step under ``strategy``; returns (metrics, generator weights, D weights)."""
    # beta2 0.999: Adam divides by the gradient's size, which amplifies the rounding differences
    # of summing over replicas where a gradient is near zero; 0.999 keeps that within tolerance.
    overrides = [
        *overrides_of("model", model),
        *overrides_of("loss", loss),
        "train.batch_size=8",
        "train.n_critic=2",
        "train.g_lr=1e-3",
        "train.d_lr=1e-3",
        "train.beta1=0.5",
        "train.beta2=0.999",
        "train.seed=7",
    ]
    gan, step = build_step(overrides, data, strategy)
    if init is not None:
        gan.generator.set_weights(init[0])
        gan.discriminator.set_weights(init[1])
    metrics = {k: float(v) for k, v in step().items()}
    return metrics, gan.generator.get_weights(), gan.discriminator.get_weights()


@pytest.mark.parametrize(
    "model, shape, loss",
    [
        ({"name": "mlp", "z_dim": 3, "g_hidden": [8], "d_hidden": [8]}, (2,), {"name": "wgan_gp"}),
        # DRAGAN's perturbation scale is the std of the global batch, not of a replica's share.
        ({"name": "mlp", "z_dim": 3, "g_hidden": [8], "d_hidden": [8]}, (2,), {"name": "wgan", "penalty": "dragan"}),
        # Without batch norm: its statistics are per replica, so only then is the step identical.
        (
            {"name": "dcgan", "z_dim": 3, "g_channels": 2, "d_channels": 2, "kernel_size": 3, "g_batchnorm": False},
            (8, 8, 1),
            {"name": "nsgan", "penalty": "dragan"},
        ),
        # A relativistic G scores a real batch of its own; R1 + R2 from D's one call on real and fake.
        ({"name": "mlp", "z_dim": 3, "g_hidden": [8], "d_hidden": [8]}, (2,), {"name": "rpgan", "gp_weight": 1.0}),
    ],
    ids=["mlp-wgan_gp", "mlp-dragan", "dcgan-nsgan-dragan", "mlp-rpgan"],
)
def test_mirrored_step_equals_default_step(model, shape, loss):
    keras.utils.set_random_seed(0)
    data = tf.constant(
        np.random.default_rng(0).integers(0, 256, (64, *shape)).astype(np.uint8 if len(shape) == 3 else np.float32)
    )
    init_g, init_d = MODELS.build(OmegaConf.create(model), data_shape=shape)
    init = (init_g.get_weights(), init_d.get_weights())
    single = one_step(tf.distribute.get_strategy(), model, shape, data, loss, init)
    strategy = STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": TWO_CPUS}))
    assert strategy.num_replicas_in_sync == 2
    mirrored = one_step(strategy, model, shape, data, loss, init)
    assert_same_step((single[0], single[1] + single[2]), (mirrored[0], mirrored[1] + mirrored[2]))


def test_batch_must_divide_over_replicas(tmp_path, make_cfg):
    cfg = make_cfg(
        *TINY["mlp"],
        "model=mlp",
        "dataset=ring8",
        "dataset.num_points=100",
        "strategy=mirrored",
        f"strategy.devices=[{','.join(TWO_CPUS)}]",
        "train.batch_size=5",
        "train.steps=1",
    )
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 5 does not divide over 2 replicas$"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_mirrored_trains_end_to_end(tmp_path, make_cfg):
    cfg = make_cfg(
        *TINY["mlp"],
        "model=mlp",
        "dataset=ring8",
        "dataset.num_points=100",
        "strategy=mirrored",
        f"strategy.devices=[{','.join(TWO_CPUS)}]",
        "train.batch_size=8",
        "train.steps=2",
    )
    assert train(cfg, tmp_path / "run")["step"] == 2


def test_mirrored_without_gpus_runs_on_the_cpu_with_a_warning(caplog):
    strategy = STRATEGIES.build(OmegaConf.create({"name": "mirrored"}))
    assert strategy.num_replicas_in_sync == 1
    assert "no GPU on this machine" in caplog.text


@pytest.mark.parametrize(
    "node, message",
    [
        ({"name": "one_device", "device": "/gpu:3"}, "no device /gpu:3 here"),
        ({"name": "mirrored", "devices": ["/cpu:0", "/cpu:9"]}, "no device /cpu:9 here"),
        ({"name": "multi_worker", "cluster": "moon"}, "unknown cluster 'moon'"),
    ],
)
def test_bad_strategy_options_are_named(node, message, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{}")
    with pytest.raises(ConfigError, match=message):
        STRATEGIES.build(OmegaConf.create(node))


def test_multi_worker_needs_a_cluster(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    with pytest.raises(ConfigError, match=r"^strategy\.cluster: multi_worker needs \$TF_CONFIG"):
        STRATEGIES.build(OmegaConf.create({"name": "multi_worker"}))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_workers_on_localhost_train_in_lockstep(tmp_path):
    workers = [f"127.0.0.1:{free_port()}" for _ in range(2)]
    run = tmp_path / "run"
    args = [
        *TINY["mlp"],
        "model=mlp",
        "dataset=ring8",
        "dataset.num_points=200",
        "strategy=multi_worker",
        "train.steps=3",
        "train.batch_size=8",
        "train.log_every=1",
        f"hydra.run.dir={run}",
    ]
    processes = []
    for index in range(2):
        env = cli_env(tmp_path)
        env["TF_CONFIG"] = json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}})
        processes.append(
            subprocess.Popen([*COMMAND, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        )
    for process in processes:
        _, stderr = process.communicate(timeout=300)
        assert process.returncode == 0, stderr
    assert_same_state(str(run / "checkpoints" / "ckpt-3"), str(run / "workers" / "1" / "checkpoints" / "ckpt-3"))
    assert (run / "metrics.jsonl").read_text().count("\n") == 3  # written once, by the chief
