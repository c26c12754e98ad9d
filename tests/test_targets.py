"""Overrides cannot make Hydra run code: a ``_target_`` (or a logging ``class``) that names anything
but gantrain's callbacks and the launcher, sweeper and sampler plugins its configs use is refused in
one line before anything is written or called."""

from __future__ import annotations

import pytest

from tests.conftest import TINY, gantrain_in_process, snapshot

TOY = [
    "model=mlp",
    *TINY["mlp"],
    "dataset=ring8",
    "dataset.num_points=64",
    "train.steps=1",
    "train.batch_size=8",
    "train.n_critic=1",
]


def opens(node: str, victim: str) -> list[str]:
    """Overrides that make ``node`` a call of ``open(victim, "w")``, which empties the file."""
    return [f"{node}=builtins.open", f"+{node.rsplit('.', 1)[0]}.file={victim}", f"+{node.rsplit('.', 1)[0]}.mode=w"]


ATTACKS = [
    ([], "+hydra.callbacks.x._target_"),
    (["-m"], "+hydra.callbacks.x._target_"),
    (["-m"], "hydra.launcher._target_"),
    (["-m"], "hydra.sweeper._target_"),
    ([], "+hydra.job_logging.handlers.x.class"),
    # Optuna's syntax, which gantrain leaves Hydra to split into jobs.
    (
        ["-m", "hparams_search=grid25_optuna", "hydra.sweeper.n_trials=1", "train.g_lr=interval(1e-4,1e-3)"],
        "+hydra.callbacks.x._target_",
    ),
    (["-m", "hparams_search=grid25_optuna", "hydra.sweeper.n_trials=1"], "hydra.sweeper.sampler._target_"),
]


@pytest.mark.parametrize("extra, node", ATTACKS, ids=[f"{'-m ' if e else ''}{n}" for e, n in ATTACKS])
def test_an_override_naming_code_to_call_is_refused(tmp_path, capfd, monkeypatch, extra, node):
    victim = tmp_path / "precious.txt"
    victim.write_text("the user's file")
    before = snapshot(tmp_path)
    code, out, err = gantrain_in_process(
        *extra, *TOY, *opens(node, str(victim)), cwd=tmp_path, capsys=capfd, monkeypatch=monkeypatch
    )
    key = node.lstrip("+")
    assert (code, out) == (2, ""), err
    assert err.startswith(f"gantrain: error: {key}: builtins.open is not ") and len(err.splitlines()) == 1, err
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize(
    "overrides",
    [
        [],
        ["hydra/launcher=parallel"],
        ["experiment=grid25", "hparams_search=grid25_optuna"],
        ["hydra/job_logging=stdout", "hydra/hydra_logging=hydra_debug"],
    ],
)
def test_the_plugins_the_configs_use_are_allowed(overrides):
    from hydra import compose, initialize_config_dir

    from gantrain.commands.targets import check_targets
    from gantrain.config import config_dir

    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        check_targets(compose("config", overrides=overrides, return_hydra_config=True))
