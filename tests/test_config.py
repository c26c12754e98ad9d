"""Config groups, registries and the checks that run before anything is written."""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from gantrain.config import check_train, config_dir
from gantrain.data import DATASETS
from gantrain.errors import ConfigError
from gantrain.models import MODELS
from gantrain.run.strategies import STRATEGIES
from gantrain.training.gon import AUXILIARIES
from gantrain.training.losses import LOSSES


@pytest.mark.parametrize("registry", [MODELS, LOSSES, DATASETS, STRATEGIES, AUXILIARIES], ids=lambda r: r.group)
def test_a_yaml_file_exists_exactly_for_each_registered_name(registry):
    files = sorted(p.stem for p in (config_dir() / registry.group).glob("*.yaml"))
    assert files == registry.names()


@pytest.mark.parametrize("registry", [MODELS, LOSSES, DATASETS, STRATEGIES, AUXILIARIES], ids=lambda r: r.group)
def test_each_yaml_file_matches_its_function_signature(registry):
    """Every key of every option file is an argument of the function it configures."""
    context = ("data_shape",) if registry is MODELS else ()
    for path in (config_dir() / registry.group).glob("*.yaml"):
        node = OmegaConf.load(path)
        assert node.name == Path(path).stem
        registry.options(node, context)  # raises on unknown keys or wrong types


def test_debug_tiny_has_networks_exactly_for_each_registered_model():
    files = sorted(p.stem for p in (config_dir() / "debug" / "model").glob("*.yaml"))
    assert files == [f"tiny_{name}" for name in MODELS.names()]


@pytest.mark.parametrize("model", MODELS.names())
def test_debug_tiny_shrinks_every_model_after_a_preset_and_yields_to_the_command_line(make_cfg, model):
    plain, tiny = make_cfg(f"model={model}"), make_cfg(f"model={model}", "debug=tiny")
    assert tiny.model.z_dim < plain.model.z_dim and tiny.train.steps < plain.train.steps
    assert (plain.train.n_critic, tiny.train.n_critic) == (5, 1)
    MODELS.options(tiny.model, ("data_shape",))
    check_train(tiny.train)
    preset = make_cfg("experiment=grid25", "debug=tiny", "train.steps=9")
    assert (list(preset.model.g_hidden), preset.model.z_dim, preset.train.steps_per_call) == ([16, 16], 4, 1)
    assert (preset.loss.name, preset.train.steps) == ("nsgan", 9)


def test_defaults_are_dcgan_wgan_gp_mnist(make_cfg):
    cfg = make_cfg()
    assert (cfg.model.name, cfg.loss.name, cfg.dataset.name, cfg.strategy.name) == (
        "dcgan",
        "wgan_gp",
        "mnist",
        "default",
    )
    assert cfg.loss.gp_weight == 10


def test_train_defaults_pass_the_checks(make_cfg):
    opts = check_train(make_cfg().train)
    assert (opts.n_critic, opts.g_lr, opts.beta1, opts.beta2) == (5, 1e-4, 0.0, 0.9)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("steps", 0, "train.steps: must be >= 1, got 0"),
        ("batch_size", -4, "train.batch_size: must be >= 1, got -4"),
        ("n_critic", 0, "train.n_critic: must be >= 1, got 0"),
        ("g_lr", 0.0, "train.g_lr: must be > 0"),
        ("beta1", 1.0, "train.beta1: must be in [0, 1)"),
        ("sample_every", 0, "train.sample_every: must be >= 1"),
        ("steps", "ten", "train.steps: Value 'ten'"),
        ("num_samples", 0, "train.num_samples: must be >= 1"),
    ],
)
def test_bad_train_values_name_their_key(make_cfg, key, value, message):
    cfg = make_cfg()
    cfg.train[key] = value
    with pytest.raises(ConfigError) as err:
        check_train(cfg.train)
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


def test_unknown_option_of_a_group_is_named(make_cfg):
    cfg = make_cfg("model=mlp", "+model.depth=3")
    with pytest.raises(ConfigError, match=r"^model\.depth: not an option of model 'mlp'$"):
        MODELS.options(cfg.model, ("data_shape",))


def test_unknown_name_lists_known_ones():
    with pytest.raises(ConfigError, match="^model.name: unknown model 'vae'; known: dcgan, mlp, r3gan, resnet$"):
        MODELS.get("vae")


@pytest.mark.parametrize("preset", sorted(p.stem for p in (config_dir() / "experiment").glob("*.yaml")))
def test_experiment_presets_pass_every_check(make_cfg, preset):
    cfg = make_cfg(f"experiment={preset}")
    LOSSES.build(cfg.loss)
    MODELS.options(cfg.model, ("data_shape",))
    DATASETS.options(cfg.dataset)
    check_train(cfg.train)
    assert cfg.dataset.name in preset or cfg.dataset.name in ("grid25", "ring8")


def test_cifar10_preset_is_the_wgan_gp_papers_setup(make_cfg):
    cfg = make_cfg("experiment=cifar10_resnet_wgan_gp")
    assert (cfg.model.name, cfg.loss.name, cfg.loss.gp_weight, cfg.model.d_pooling) == (
        "resnet",
        "wgan_gp",
        10.0,
        "mean",
    )
    t = cfg.train
    assert (t.batch_size, t.n_critic, t.g_lr, t.d_lr, t.beta1, t.beta2, t.lr_decay, t.steps) == (
        64,
        5,
        2e-4,
        2e-4,
        0.0,
        0.9,
        True,
        100_000,
    )


def test_a_preset_yields_to_the_command_line(make_cfg):
    assert make_cfg("experiment=grid25", "train.steps=7").train.steps == 7
