"""train() end to end in-process, on tiny data: every loss with every model, and the run layout."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from gantrain.errors import ConfigError, GantrainError
from gantrain.pictures import PAD, image_grid
from gantrain.run.train import train
from tests.conftest import TINY, assert_same_state, build_step, straight_and_resumed

FAST = ["train.steps=2", "train.batch_size=4", "train.n_critic=2", "train.log_every=1"]


def dataset_overrides(kind, mnist_npz, cifar_archive):
    return {
        "mnist": ["dataset=mnist", f"dataset.path={mnist_npz}"],
        "cifar10": ["dataset=cifar10", f"dataset.path={cifar_archive}"],
        "ring8": ["dataset=ring8", "dataset.num_points=500"],
    }[kind]


CASES = [
    (m, d, loss)
    for loss in ("gan", "nsgan", "wgan_gp")
    for m, d in (("mlp", "ring8"), ("mlp", "mnist"), ("dcgan", "mnist"), ("dcgan", "cifar10"))
]


@pytest.mark.parametrize("model, data, loss", CASES)
def test_two_steps_with_finite_losses(tmp_path, make_cfg, mnist_npz, cifar_archive, model, data, loss):
    cfg = make_cfg(
        f"model={model}", f"loss={loss}", *TINY[model], *FAST, *dataset_overrides(data, mnist_npz, cifar_archive)
    )
    result = train(cfg, tmp_path / "run")
    assert result["step"] == 2
    assert all(math.isfinite(v) for v in result.values())
    assert ("gp" in result) == (loss == "wgan_gp")
    lines = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [1, 2]
    assert {"d_loss", "g_loss", "steps_per_sec"} <= set(lines[0])


def test_run_directory_layout(tmp_path, make_cfg, mnist_npz):
    cfg = make_cfg(
        "model=dcgan",
        *TINY["dcgan"],
        *FAST,
        "train.sample_every=1",
        "train.checkpoint_every=1",
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        "train.num_samples=10",
    )
    run = tmp_path / "run"
    train(cfg, run)
    assert (run / ".hydra" / "config.yaml").is_file()
    assert sorted(p.name for p in (run / "samples").iterdir()) == ["step_000001.png", "step_000002.png"]
    assert {"ckpt-1.index", "ckpt-2.index", "checkpoint"} <= {p.name for p in (run / "checkpoints").iterdir()}
    assert any((run / "tb").iterdir())
    # 10 samples: a 4x4 grid (ceil(sqrt(10)) columns) of 28x28 tiles.
    assert Image.open(run / "samples" / "step_000002.png").size == (4 * (28 + PAD) + PAD,) * 2


def test_points_preview_is_a_scatter_plot(tmp_path, make_cfg):
    cfg = make_cfg("model=mlp", *TINY["mlp"], *FAST, "dataset=grid25", "dataset.num_points=300")
    train(cfg, tmp_path / "run")
    image = np.asarray(Image.open(tmp_path / "run" / "samples" / "step_000002.png"))
    assert image.shape == (512, 512, 3)
    colours = {tuple(c) for c in image.reshape(-1, 3)}
    assert (70, 110, 200) in colours and (240, 120, 20) in colours  # real and generated points


def test_a_new_run_refuses_a_directory_holding_one(tmp_path, make_cfg):
    cfg = make_cfg("model=mlp", *TINY["mlp"], *FAST, "dataset=ring8", "dataset.num_points=100")
    train(cfg, tmp_path / "run")
    before = (tmp_path / "run" / ".hydra" / "config.yaml").read_text()
    with pytest.raises(GantrainError, match="already holds a run; continue it with resume="):
        train(cfg, tmp_path / "run")
    assert (tmp_path / "run" / ".hydra" / "config.yaml").read_text() == before


def test_rejected_config_writes_nothing(tmp_path, make_cfg):
    cfg = make_cfg("model=dcgan", "dataset=ring8", *FAST)
    with pytest.raises(ConfigError, match="^model: dcgan needs images"):
        train(cfg, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_image_grid_is_square_with_padding():
    grid = image_grid(np.zeros((64, 28, 28, 1), np.float32))
    assert grid.size == (8 * 30 + 2, 8 * 30 + 2) and grid.mode == "L"
    assert np.asarray(grid)[5, 5] == 128  # mid grey: a zero image


def test_steps_per_call_changes_nothing_but_speed(tmp_path, make_cfg):
    """Four steps in one compiled call give the same weights as four calls of one step."""
    for k in (1, 4):
        cfg = make_cfg(
            "model=mlp",
            *TINY["mlp"],
            *FAST,
            "dataset=ring8",
            "dataset.num_points=300",
            "train.steps=8",
            "train.log_every=4",
            f"train.steps_per_call={k}",
        )
        train(cfg, tmp_path / f"k{k}")
        steps = [json.loads(line)["step"] for line in (tmp_path / f"k{k}" / "metrics.jsonl").read_text().splitlines()]
        assert steps == [4, 8]
    assert_same_state(*(str(tmp_path / f"k{k}" / "checkpoints" / "ckpt-8") for k in (1, 4)))


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_with_float32_outputs(tmp_path, make_cfg, mnist_npz, precision):
    cfg = make_cfg(
        "model=dcgan",
        *TINY["dcgan"],
        *FAST,
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        f"train.precision={precision}",
    )
    result = train(cfg, tmp_path / "run")
    assert all(math.isfinite(v) for v in result.values())
    # Layers compute in 16 bits on float32 variables, and D's logit and G's output stay float32;
    # float16 gradients go through loss scaling.
    gan, _ = build_step(
        ["model=dcgan", *TINY["dcgan"], *FAST, f"train.precision={precision}"], tf.zeros([4, 28, 28, 1], tf.uint8)
    )
    half = precision.removeprefix("mixed_")
    computes = [
        layer.dtype_policy.compute_dtype
        for model in (gan.generator, gan.discriminator)
        for layer in model.layers
        if layer.weights
    ]
    assert computes == [half] * (len(computes) - 1) + ["float32"]
    assert {v.dtype for v in gan.generator.variables + gan.discriminator.variables} == {"float32"}
    assert gan.generator(tf.zeros([2, 4])).dtype == tf.float32
    assert all(
        isinstance(o, keras.optimizers.LossScaleOptimizer) == (half == "float16")
        for o in (gan.g_optimizer, gan.d_optimizer)
    )
    # The loss scale of float16 is saved with the run, so a resume continues with it.
    names = [n for n, _ in tf.train.list_variables(str(tmp_path / "run" / "checkpoints" / "ckpt-2"))]
    assert any("dynamic_scale" in n for n in names) == (precision == "mixed_float16")


def test_resume_is_bitwise_with_every_optional_state(tmp_path, make_cfg):
    """GON, the moving average, the learning-rate scales and DRAGAN's noise all continue exactly.
    (Not lr_decay here: it decays over train.steps, which differs between the two runs.)"""
    options = [
        "model=mlp",
        *TINY["mlp"],
        *FAST,
        "dataset=grid25",
        "dataset.num_points=300",
        "aux=gon",
        "train.ema=0.9",
        "loss=hinge",
        "loss.penalty=dragan",
        "train.checkpoint_every=2",
    ]
    ckpt = straight_and_resumed(make_cfg, tmp_path, options, steps=4, split=2)
    assert_same_state(*ckpt)
    names = [name for name, _ in tf.train.list_variables(ckpt[0])]
    for part in ("aux_optimizer", "ema_generator", "lr_scales"):  # networks are saved via their optimizers
        assert any(name.startswith(part) for name in names), part


def test_the_toy_presets_resume_bit_for_bit_under_xla(tmp_path, make_cfg):
    """grid25 and ring8 compile 50 steps per call with XLA, whose own sampler draws the noise: a run
    stopped at step 4 and resumed (calls of 4 and 2 steps) ends where one call of 6 steps does.
    grid25 has everything ring8 has, and top-k besides."""
    options = [
        "experiment=grid25",
        *TINY["mlp"],
        "dataset.num_points=300",
        "train.batch_size=16",
        "train.lr_decay=false",
    ]  # lr_decay spans train.steps, which differs between the two runs
    cfg = make_cfg(*options)
    assert (cfg.train.jit_compile, cfg.train.steps_per_call) == (True, 50)
    assert_same_state(*straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=4))


@pytest.mark.parametrize("pack", [1, 4])
def test_xla_resumes_batch_norm_statistics_bit_for_bit(tmp_path, make_cfg, pack):
    """PacGAN's presets compile 50 steps per call with XLA, and G's batch norm keeps moving
    statistics, updated at every step outside the gradients: calls of 4 and 2 steps update them
    exactly as one call of 6 does."""
    options = [
        "experiment=pacgan_grid25",
        *TINY["mlp"],
        "dataset.num_points=300",
        "train.batch_size=16",
        f"train.pack={pack}",
    ]
    cfg = make_cfg(*options)
    assert (cfg.train.jit_compile, cfg.train.steps_per_call, cfg.model.g_batchnorm) == (True, 50, True)
    assert_same_state(*straight_and_resumed(make_cfg, tmp_path, options, steps=6, split=4))


@pytest.mark.parametrize("model", ["resnet", "dcgan"])
def test_image_models_with_spectral_norm_and_decay(tmp_path, make_cfg, mnist_npz, model):
    cfg = make_cfg(
        f"model={model}",
        *TINY[model],
        *FAST,
        "train.n_critic=1",  # the resnet's trace is most of this test: one critic update is enough here
        "dataset=mnist",
        f"dataset.path={mnist_npz}",
        "model.d_spectral_norm=true",
        "loss=hinge",
        "train.lr_decay=true",
        "train.ema=0.99",
    )
    result = train(cfg, tmp_path / "run")
    assert result["step"] == 2 and all(math.isfinite(v) for v in result.values())


RESUMABLE = [
    "model=mlp",
    *TINY["mlp"],
    "dataset=ring8",
    "dataset.num_points=300",
    "train.batch_size=8",
    "train.n_critic=2",
    "eval.num_samples=100",
]


def test_the_overrides_a_resume_allows_take_effect(tmp_path, make_cfg, capfd, monkeypatch):
    """`gantrain resume=<run> train.steps=8 ...`: the run goes on to the new train.steps, and from the
    resumed step on logs, previews, checkpoints and evaluates at the new periods."""
    from tests.conftest import gantrain_in_process

    run = tmp_path / "run"
    periods = ["train.log_every=4", "train.sample_every=4", "train.checkpoint_every=4"]
    train(make_cfg(*RESUMABLE, "train.steps=4", *periods), run)
    code, _, err = gantrain_in_process(
        f"resume={run}",
        "train.steps=8",
        "train.log_every=1",
        "train.sample_every=3",
        "train.checkpoint_every=2",
        "eval.every=2",
        cwd=tmp_path,
        capsys=capfd,
        monkeypatch=monkeypatch,
    )
    assert code == 0, err
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [4, 5, 6, 7, 8]
    assert [r["step"] for r in records if "modes" in r] == [6, 8]  # evaluated from the resume on
    assert sorted(p.name for p in (run / "samples").iterdir()) == [f"step_{s:06d}.png" for s in (4, 6, 8)]
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.index")) == [f"ckpt-{s}.index" for s in (4, 6, 8)]


def test_a_resume_that_raises_train_steps_stretches_the_learning_rate_decay(tmp_path, make_cfg, built_gans):
    """A run of 4 steps with lr_decay, resumed to 8: where it resumes, its optimizers' learning rates
    are those of a run made with train.steps=8 from the start (half the initial ones), not the
    4-step schedule's zero."""
    from gantrain.training.gan import build_gan

    options = [*RESUMABLE, "train.lr_decay=true", "train.g_lr=1e-3", "train.d_lr=3e-3"]
    run = tmp_path / "run"
    train(make_cfg(*options, "train.steps=4"), run)
    resumed_at = {}

    def opened():  # the checkpoint of step 4 is restored, nothing trained yet
        optimizers = {"g": built_gans[-1].g_optimizer, "d": built_gans[-1].d_optimizer}
        resumed_at.update({name: (int(o.iterations), float(o.learning_rate)) for name, o in optimizers.items()})

    train(make_cfg(*options, "train.steps=8"), run, resume=True, opened=opened)
    straight = build_gan(make_cfg(*options, "train.steps=8"), (2,)).learning_rates
    assert resumed_at == {"g": (4, float(straight["g"](4))), "d": (8, float(straight["d"](8)))}
    assert resumed_at == {"g": (4, pytest.approx(1e-3 / 2)), "d": (8, pytest.approx(3e-3 / 2))}
