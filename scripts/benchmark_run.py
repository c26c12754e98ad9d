"""One benchmark run: train with ``gantrain`` in a subprocess (timed), then ``gantrain-eval`` its
last checkpoint, with plain sampling and with each discriminator-driven sampler asked for. Each
result is kept in the run's ``benchmark.json`` (``benchmark_<sampler>.json``), so a benchmark
that is started again skips finished work and resumes an interrupted run (``gantrain resume=``;
its ``seconds`` then count the resumed part only)."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

# Discriminator-driven samplers by name: gantrain-eval's keys for each.
SAMPLERS = {
    "drs": ("sampling=drs",),
    "drs_exact": ("sampling=drs", "drs_percentile=null"),
    "mh": ("sampling=mh",),
    "dot": ("sampling=dot",),
    "dot_k1": ("sampling=dot", "dot_k=1"),
    "dot_k0.05": ("sampling=dot", "dot_k=0.05"),
    "dot_f0.05": ("sampling=dot", "dot_k_fraction=0.05"),
}


def benchmark_env(threads: int | None = None) -> dict[str, str]:
    """The subprocesses' environment; ``threads``: kernel threads per run when runs share the cores.

    Only the kernels' threads are split between runs: pinning TensorFlow's inter-op pool to one
    thread serialises independent ops (measured 30 instead of 52 steps/s for the grid25 preset)."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads is not None:
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
    return env


def add_seed_arguments(parser, default: int) -> None:
    """``--seeds n --first-seed k``: seeds k … k + n - 1, so the seeds a table still lacks can be
    added without rerunning the others (:func:`seeds_of`)."""
    parser.add_argument("--seeds", type=int, default=default, help="how many seeds")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first-seed … first-seed + seeds - 1")


def seeds_of(args) -> list[int]:
    return list(range(args.first_seed, args.first_seed + args.seeds))


def threads_per_run(jobs: int) -> int | None:
    """Kernel threads for each of ``jobs`` runs sharing the cores; None (TensorFlow's default, the
    whole machine) for one run at a time, so that its minutes are those of a run alone."""
    return max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None


def pack_of(overrides: list[str]) -> int:
    """``train.pack`` of the config ``gantrain`` composes from ``overrides``: a D of packs (> 1) does
    not judge single samples, so the D-driven samplers cannot use it."""
    from gantrain.api import compose

    return compose(overrides).train.pack


def train_and_evaluate(
    command: list[str], run_dir: Path, log: Path, threads: int | None = None, eval_args: tuple[str, ...] = ()
) -> dict:
    """gantrain-eval's metrics of the trained run plus ``seconds`` (training) and ``command``."""
    done = run_dir / "benchmark.json"  # eval.json is gantrain-eval's, whichever checkpoint it last read
    if done.exists():
        return json.loads(done.read_text())
    if (run_dir / ".hydra" / "config.yaml").exists():
        command = ["gantrain", f"resume={run_dir}"]
    env = benchmark_env(threads)
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(log, "w") as out:
        subprocess.run(command, check=True, stdout=out, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    result = {**evaluate(run_dir, eval_args, threads), "seconds": seconds, "command": " ".join(command)}
    done.write_text(json.dumps(result, indent=2) + "\n")
    return result


def evaluate(run_dir: Path, eval_args: tuple[str, ...] = (), threads: int | None = None) -> dict:
    """``gantrain-eval run_dir=<run_dir> <eval_args>`` in a subprocess; its metrics."""
    subprocess.run(
        ["gantrain-eval", f"run_dir={run_dir}", *eval_args], check=True, capture_output=True, env=benchmark_env(threads)
    )
    return json.loads((run_dir / "eval.json").read_text())


def evaluate_driven(run_dir: Path, sampler: str, threads: int | None = None, eval_args: tuple[str, ...] = ()) -> dict:
    """gantrain-eval's metrics of the run's last checkpoint sampled by ``sampler`` (a key of
    :data:`SAMPLERS`), plus ``seconds`` (the sampling and its evaluation)."""
    done = run_dir / f"benchmark_{sampler}.json"
    if not done.exists():
        start = time.perf_counter()
        result = evaluate(run_dir, (*SAMPLERS[sampler], *eval_args), threads)
        done.write_text(json.dumps({**result, "seconds": time.perf_counter() - start}, indent=2) + "\n")
    return json.loads(done.read_text())
