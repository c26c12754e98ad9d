"""train.schedule: R3GAN's cosine schedules against the reference's formula, the values the step
uses, bitwise resume and mirrored = default across them, and the checks of bad values."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import tensorflow as tf
from omegaconf import OmegaConf

from gantrain.errors import ConfigError
from gantrain.run.strategies import STRATEGIES
from gantrain.training.ema import decay_from_half_life, half_life
from gantrain.training.schedules import Schedule
from tests.conftest import (
    TINY,
    assert_same_state,
    assert_same_step,
    build_step,
    fake_images,
    gantrain_in_process,
    snapshot,
    straight_and_resumed,
)


def reference(
    cur_nimg, base_value, total_nimg, final_value=0.0, warmup_value=0.0, warmup_nimg=0, hold_base_value_nimg=0
):
    """``cosine_decay_with_warmup`` of R3GAN's training/training_loop.py, as written there."""
    decay = 0.5 * (
        1
        + np.cos(
            np.pi
            * (cur_nimg - warmup_nimg - hold_base_value_nimg)
            / float(total_nimg - warmup_nimg - hold_base_value_nimg)
        )
    )
    cur_value = base_value + (1 - decay) * (final_value - base_value)
    if hold_base_value_nimg > 0:
        cur_value = np.where(cur_nimg > warmup_nimg + hold_base_value_nimg, cur_value, base_value)
    if warmup_nimg > 0:
        slope = (base_value - warmup_value) / warmup_nimg
        warmup_v = slope * cur_nimg + warmup_value
        cur_value = np.where(cur_nimg < warmup_nimg, warmup_v, cur_value)
    return float(np.where(cur_nimg > total_nimg, final_value, cur_value))


@pytest.mark.parametrize(
    "schedule",
    [
        Schedule(base=2e-4, final=5e-5, steps=100),  # the CIFAR-10 learning rate
        Schedule(base=0.0, final=5e6, steps=100, warmup=10, warmup_value=1e6),  # a warm-up downwards
        Schedule(base=0.9, final=0.99, steps=100, hold=25),
        Schedule(base=0.05, final=0.005, steps=100, warmup=7, warmup_value=0.5, hold=13),
    ],
    ids=["decay", "warmup", "hold", "warmup-hold"],
)
def test_the_schedule_is_r3gans_at_every_step(schedule):
    """At generator step k the value R3GAN's formula gives at k * batch images, horizons in images
    alike: in the warm-up, the hold, the decay, at the horizon and past it."""
    batch = 64
    for k in range(0, 131):
        expected = reference(
            k * batch,
            schedule.base,
            schedule.steps * batch,
            schedule.final,
            schedule.warmup_value,
            schedule.warmup * batch,
            schedule.hold * batch,
        )
        assert float(schedule(k)) == pytest.approx(expected, rel=1e-12, abs=1e-18), k


def test_a_half_life_in_images_is_the_decay_per_step():
    """R3GAN's beta = 0.5 ** (batch / ema_nimg), and its inverse for train.ema's start."""
    assert float(decay_from_half_life(tf.constant(4.0, tf.float64), 4)) == 0.5
    assert float(decay_from_half_life(tf.constant(0.0, tf.float64), 512)) == 0.0  # G itself
    assert half_life(0.999, 64) == pytest.approx(64 * math.log(0.5) / math.log(0.999))
    assert float(decay_from_half_life(tf.constant(half_life(0.999, 64), tf.float64), 64)) == pytest.approx(0.999)


def schedule(final, warmup_value, steps=10, warmup=5, hold=0) -> str:
    return f"{{final:{final},steps:{steps},warmup:{warmup},warmup_value:{warmup_value},hold:{hold}}}"


R3GAN_STEP = [
    "model=r3gan",
    *TINY["r3gan"],
    "loss=rpgan",
    "train.batch_size=4",
    "train.n_critic=1",
    "train.augment=[translation,cutout]",
]
# Each quantity's base, and a schedule whose warm-up starts it at another value at step 0.
SCHEDULED = [
    "train.g_lr=1e-3",
    "train.d_lr=2e-3",
    "train.beta2=0.9",
    "loss.gp_weight=0.05",
    "train.ema=0.0",
    "train.augment_p=0.0",
    f"train.schedule.lr={schedule(1e-4, 5e-4)}",
    f"train.schedule.beta2={schedule(0.99, 0.5)}",
    f"train.schedule.gamma={schedule(0.005, 2.0)}",
    f"train.schedule.ema={schedule(5000, 4)}",
    f"train.schedule.augment_p={schedule(0.55, 0.5)}",
]
# Those values at step 0, constant: lr x1/2 (both), beta2 0.5, gamma 2, a half-life of one batch, p 0.5.
AT_STEP_0 = [
    "train.g_lr=5e-4",
    "train.d_lr=1e-3",
    "train.beta2=0.5",
    "loss.gp_weight=2.0",
    "train.ema=0.5",
    "train.augment_p=0.5",
]


def trained_weights(gan) -> list[np.ndarray]:
    return gan.generator.get_weights() + gan.discriminator.get_weights() + gan.ema.model.get_weights()


def test_the_step_uses_each_scheduled_value_of_its_step():
    """The first step with every schedule equals a step with their step-0 values as constants (so
    each value reaches what it drives: Adam's rates and beta2, the penalty, the average, the
    augmentation); two steps on, each variable and reported value is the schedule's at step 2."""
    data = tf.constant(fake_images(16, 8, 8, 3))
    gan, step = build_step([*R3GAN_STEP, *SCHEDULED], data)
    step()
    constant, constant_step = build_step([*R3GAN_STEP, *AT_STEP_0], data)
    constant_step()
    for a, b in zip(trained_weights(gan), trained_weights(constant), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7)

    metrics = {name: float(value) for name, value in step(2).items()}
    assert int(gan.step) == 3
    at = {
        name: float(entry.schedule(2)) for name, entry in zip(gan.schedules.names, gan.schedules.entries, strict=True)
    }
    assert list(at) == [
        "schedule/lr",
        "schedule/beta2",
        "schedule/gamma",
        "schedule/ema_half_life",
        "schedule/augment_p",
    ]
    assert {name: metrics[name] for name in at} == pytest.approx(at, rel=1e-6)
    lr = at["schedule/lr"]
    assert float(gan.g_optimizer.learning_rate) == pytest.approx(lr, rel=1e-6)
    assert float(gan.d_optimizer.learning_rate) == pytest.approx(2 * lr, rel=1e-6)  # d_lr / g_lr = 2
    for optimizer in (gan.g_optimizer, gan.d_optimizer):
        assert float(optimizer.beta_2) == pytest.approx(at["schedule/beta2"], rel=1e-6)
    assert float(gan.objective.penalty_weight) == pytest.approx(at["schedule/gamma"], rel=1e-6)
    assert float(gan.ema.decay) == pytest.approx(0.5 ** (4 / at["schedule/ema_half_life"]), rel=1e-6)
    assert float(gan.augment.p) == pytest.approx(at["schedule/augment_p"], rel=1e-6)


@pytest.fixture
def tiny_images(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    for i, pixels in enumerate(fake_images(16, 8, 8, 3)):
        tf.io.write_file(str(images / f"{i}.png"), tf.io.encode_png(pixels))
    return ["dataset=folder", f"dataset.path={images}", "dataset.resolution=8", "dataset.in_memory=true"]


def test_resume_is_bitwise_across_the_schedules(tmp_path, make_cfg, tiny_images):
    """Split at step 3 of 6, inside every schedule (warm-up 1, hold 1, horizon 4) and past it: the
    resumed run ends in the straight run's state and logs the same values."""
    horizons = schedule(0.5, 0.2, steps=4, warmup=1, hold=1)
    options = [
        *R3GAN_STEP,
        *tiny_images,
        *SCHEDULED[:6],
        "train.log_every=1",
        *(
            f"train.schedule.{name}={horizons.replace('0.5,', f'{final},', 1)}"
            for name, final in (("lr", 1e-4), ("beta2", 0.99), ("gamma", 0.005), ("ema", 5000), ("augment_p", 0.55))
        ),
    ]
    assert_same_state(*straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=3))
    logs = [
        [json.loads(line) for line in (tmp_path / run / "metrics.jsonl").read_text().splitlines()]
        for run in ("straight", "resumed")
    ]
    values = [[{k: v for k, v in record.items() if k.startswith("schedule/")} for record in log] for log in logs]
    assert values[0] == values[1] and len(values[0]) == 6 and len(values[0][0]) == 5


def test_mirrored_steps_across_the_schedules_equal_default_steps():
    """Two steps of two replicas, each step with new values, equal two steps of one device."""
    data = tf.constant(fake_images(32, 8, 8, 3))
    # beta2 from 0.999 (as test_strategies): Adam divides by the gradient's size, which amplifies
    # the replicas' rounding where a gradient is near zero.
    options = [
        *R3GAN_STEP,
        *SCHEDULED,
        "train.batch_size=8",
        "train.beta2=0.999",
        f"train.schedule.beta2={schedule(0.99, 0.995)}",
    ]
    results = []
    for strategy in (None, STRATEGIES.build(OmegaConf.create({"name": "mirrored", "devices": ["/cpu:0", "/cpu:1"]}))):
        gan, step = build_step(options, data, strategy)
        step()
        metrics = {name: float(value) for name, value in step().items()}
        results.append((metrics, trained_weights(gan)))
    assert results[0][0]["schedule/beta2"] != 0.995  # the second step's values
    assert_same_step(*results)


BAD = [
    ("train.schedule.beta2={final:1.0,steps:10}", "train.schedule.beta2.final: must be in [0, 1), got 1.0"),
    (
        "train.schedule.beta2={final:0.99,steps:10,warmup:2,warmup_value:-0.1}",
        "train.schedule.beta2.warmup_value: must be in [0, 1), got -0.1",
    ),
    ("train.schedule.gamma={final:-1,steps:10}", "train.schedule.gamma.final: must be >= 0, got -1.0"),
    ("train.schedule.lr={final:-1e-5,steps:10}", "train.schedule.lr.final: must be >= 0, got -1e-05"),
    (
        "train.schedule.augment_p={final:1.5,steps:10} train.augment=[cutout]",
        "train.schedule.augment_p.final: must be in [0, 1], got 1.5",
    ),
    ("train.schedule.ema={final:-5,steps:10} train.ema=0.9", "train.schedule.ema.final: must be >= 0, got -5.0"),
    ("train.schedule.lr={final:0,steps:0}", "train.schedule.lr.steps: must be >= 1, got 0"),
    (
        "train.schedule.lr={final:0,steps:10,warmup:11}",
        "train.schedule.lr.warmup: warmup + hold (11) must be below steps (10)",
    ),
    (
        "train.schedule.lr={final:0,steps:10,warmup:4,hold:6}",
        "train.schedule.lr.hold: warmup + hold (10) must be below steps (10)",
    ),
    ("train.schedule.lr={steps:10}", "train.schedule.lr.final: needs a value"),
    ("train.schedule.lr={final:0,steps:10,decay:3}", "train.schedule.lr.decay: not an option of train"),
    ("train.schedule.lr={final:0,steps:10} train.lr_decay=true", "train.schedule.lr: and train.lr_decay both"),
    (
        "train.schedule.augment_p={final:0.5,steps:10}",
        "train.schedule.augment_p: schedules the augmentation, which is off",
    ),
    (
        "train.schedule.augment_p={final:0.5,steps:10} train.augment=[cutout] train.augment_p=auto",
        "train.schedule.augment_p: and train.augment_p=auto (ADA) both",
    ),
    ("train.schedule.ema={final:5000,steps:10}", "train.schedule.ema: schedules the moving average of G, which is off"),
    ("train.ema=0", "train.ema: 0 averages nothing"),
    (
        "train.schedule.gamma={final:0.5,steps:10} loss=rpgan loss.penalty=none",
        "train.schedule.gamma: schedules the penalty's weight (loss.gp_weight), and loss rpgan has no penalty",
    ),
]


@pytest.mark.parametrize(
    "overrides, message", BAD, ids=[case[1].split(":")[0] + "-" + str(i) for i, case in enumerate(BAD)]
)
def test_a_bad_schedule_is_named_in_one_line(make_cfg, overrides, message):
    """Refused where the rest of the config is checked (the loss's penalty where the loss is built)."""
    from gantrain.training.gan import build_gan

    cfg = make_cfg(*TINY["mlp"], "model=mlp", *overrides.split())
    with pytest.raises(ConfigError) as err:
        build_gan(cfg, (2,))  # check_train first, then the loss
    assert str(err.value).startswith(message) and "\n" not in str(err.value)


@pytest.mark.parametrize("overrides", [BAD[0][0], BAD[-1][0]], ids=["range", "no-penalty"])
def test_the_command_refuses_it_with_exit_2_and_writes_nothing(tmp_path, mnist_npz, overrides, capfd, monkeypatch):
    before = snapshot(tmp_path)
    code, _, stderr = gantrain_in_process(
        *TINY["mlp"],
        "model=mlp",
        f"dataset.path={mnist_npz}",
        "train.steps=1",
        *overrides.split(),
        f"hydra.run.dir={tmp_path / 'run'}",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    errors = [line for line in stderr.splitlines() if line.startswith("gantrain: error:")]
    message = next(message for bad, message in BAD if bad == overrides)
    assert code == 2 and len(errors) == 1 and errors[0].startswith(f"gantrain: error: {message}"), stderr
    assert "Traceback" not in stderr
    assert snapshot(tmp_path) == before
