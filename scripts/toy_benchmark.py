"""The 2-D mode-coverage benchmark of VEEGAN/PacGAN with the ``ring8`` and ``grid25`` presets.

For each preset (or variant of one, ``VARIANTS``) and seed: one ``gantrain experiment=<preset>
train.seed=<seed>`` run, then
``gantrain-eval`` on its final checkpoint (2500 samples). Prints, per preset, the mean and standard
error over seeds of modes, high-quality fraction and reverse KL next to PacGAN's Table 1 rows and
the data's own scores (as many draws of 2500 fresh real points as seeds: what a sampler that follows
the data exactly scores), and the wall time per run; for runs with ``eval.every`` (an extra
override), their evaluations during training; saves one PNG per preset with a scatter plot of
every seed's samples.

Usage: ``python scripts/toy_benchmark.py [--seeds 10] [--first-seed 0] [--jobs 1] [--out outputs/toy_benchmark]
[--presets grid25 ring8 pacgan_grid25 pacgan_grid25_pack4 ...] [-- extra overrides]``
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from benchmark_run import (
    SAMPLERS,
    add_seed_arguments,
    evaluate_driven,
    pack_of,
    seeds_of,
    threads_per_run,
    train_and_evaluate,
)
from omegaconf import OmegaConf
from PIL import Image

from gantrain.data import DATASETS
from gantrain.pictures import PAD, scatter
from gantrain.run.directory import read_jsonl

# PacGAN (Lin et al. 2018), Table 1: mean over 10 trials of (modes, high-quality %, reverse KL).
PUBLISHED = {
    "grid25": [("GAN", 17.3, 94.8, 0.70), ("PacGAN4", 24.8, 93.6, 0.04)],
    "ring8": [("GAN", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07)],
}
# Targets as (modes, high-quality %, reverse KL), plain sampling and D-driven; None: no target.
TARGETS = {
    "grid25": {"none": (25.0, 95.7, None), "driven": (25.0, 97.0, 0.02)},
    "ring8": {"none": (8.0, 98.2, 0.03), "driven": (8.0, 99.0, 0.03)},
}
# Variants: a preset with overrides. PacGAN's packed runs judge 100 packs per batch, so 400 samples.
VARIANTS = {
    f"pacgan_{data}_pack{m}": ("pacgan_" + data, [f"train.pack={m}", f"train.batch_size={100 * m}"])
    for data in ("grid25", "ring8")
    for m in (2, 3, 4)
}


def experiment_of(preset: str) -> list[str]:
    """The overrides that make ``preset`` (a preset or one of ``VARIANTS``)."""
    experiment, overrides = VARIANTS.get(preset, (preset, []))
    return [f"experiment={experiment}", *overrides]


def dataset_of(preset: str) -> str:
    return preset.split("_")[1] if preset.startswith("pacgan_") else preset


def run_one(
    preset: str, seed: int, out: Path, extra: list[str], threads: int | None, samplings: list[str]
) -> dict[str, dict]:
    """Train and evaluate one seed in subprocesses, with plain sampling (``none``) and each of
    ``samplings``; returns each one's eval metrics plus ``seconds`` (training, then sampling)."""
    run_dir = out / preset / f"seed_{seed}"
    command = ["gantrain", *experiment_of(preset), f"train.seed={seed}", f"hydra.run.dir={run_dir}", *extra]
    results = {
        "none": train_and_evaluate(
            command, run_dir, out / f"{preset}_seed_{seed}.log", threads, (f"export={run_dir / 'samples.npz'}",)
        )
    }
    for method in samplings:
        results[method] = evaluate_driven(run_dir, method, threads, (f"export={run_dir / f'samples_{method}.npz'}",))
    return results


def mean_se(values: list[float]) -> str:
    """ "mean ± standard error"; one value has no standard error, and says so."""
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.3g} (one seed)"
    return f"{mean:.3g} ± {float(np.std(values, ddof=1) / math.sqrt(len(values))):.2g}"


def data_row(preset: str, seeds: list[int], n: int = 2500) -> dict[str, list[float]]:
    """Modes, high-quality fraction and reverse KL of ``n`` fresh real points per seed, each draw
    seeded apart from the training set (seed 0) and the held-out points (seed 1)."""
    from gantrain.evaluation.metrics import mode_metrics

    scores = []
    for seed in seeds:
        data = DATASETS.build(OmegaConf.create({"name": dataset_of(preset), "num_points": n, "seed": 1000 + seed}))
        scores.append(mode_metrics(data.x, data.centers, data.std))
    return {key: [s[key] for s in scores] for key in ("modes", "hq", "rkl")}


def target_row(target: tuple, runs: list[dict]) -> str:
    """The table row saying whether the seeds' means meet ``target`` (modes, hq %, rkl)."""
    modes, hq, rkl = target
    met = (
        np.mean([r["modes"] for r in runs]) >= modes
        and 100 * np.mean([r["hq"] for r in runs]) >= hq
        and (rkl is None or np.mean([r["rkl"] for r in runs]) <= rkl)
    )
    wanted = f">= {modes} modes, >= {hq} %" + (f", reverse KL <= {rkl}" if rkl is not None else "")
    return f"|  | target: {wanted} | {'met' if met else 'NOT met'} | | | |"


def scatter_grid(preset: str, out: Path, seeds: list[int], sampling: str = "none") -> Path:
    """One scatter panel per seed (generated orange over real blue), tiled in rows of five."""
    real = DATASETS.build(OmegaConf.create({"name": dataset_of(preset)})).x[:2500]
    name = "samples.npz" if sampling == "none" else f"samples_{sampling}.npz"
    panels = [scatter(np.load(out / preset / f"seed_{s}" / name)["x"], real, size=300) for s in seeds]
    cols = min(5, len(panels))
    rows = math.ceil(len(panels) / cols)
    grid = Image.new("RGB", (cols * (300 + PAD) + PAD, rows * (300 + PAD) + PAD), (128, 128, 128))
    for i, panel in enumerate(panels):
        grid.paste(panel, (PAD + (i % cols) * (300 + PAD), PAD + (i // cols) * (300 + PAD)))
    path = out / (f"{preset}.png" if sampling == "none" else f"{preset}_{sampling}.png")
    grid.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["grid25", "ring8"])
    add_seed_arguments(parser, default=10)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at a time (each gets cores/jobs threads); 1 times each run on the whole machine",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/toy_benchmark"))
    parser.add_argument(
        "--sampling",
        nargs="*",
        default=["drs"],
        choices=list(SAMPLERS),
        help="discriminator-driven samplers to report beside plain sampling (drs_exact: drs_percentile=null)",
    )
    parser.add_argument("extra", nargs="*", help="overrides for every run, after --")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    threads = threads_per_run(args.jobs)
    seeds = seeds_of(args)
    jobs = [(preset, seed) for preset in args.presets for seed in seeds]
    # A D of packs does not judge single samples: its runs get plain sampling only.
    samplings = {
        preset: [] if pack_of(experiment_of(preset) + args.extra) > 1 else args.sampling for preset in args.presets
    }
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: run_one(*job, args.out, args.extra, threads, samplings[job[0]]), jobs))
    by_preset = {preset: [r for (p, _), r in zip(jobs, results, strict=True) if p == preset] for preset in args.presets}

    print(
        f"\n{len(seeds)} seeds per preset ({seeds[0]}–{seeds[-1]}), {args.jobs} run(s) at a time, "
        f"{threads or 'all'} kernel thread(s) each\n"
    )
    print("| preset | method | modes | high quality (%) | reverse KL | minutes per run |")
    print("|---|---|---|---|---|---|")
    for preset, rows in by_preset.items():
        for name, modes, hq, rkl in PUBLISHED.get(dataset_of(preset), []):
            print(f"| {preset} | {name} (PacGAN Table 1) | {modes} | {hq} | {rkl} | |")
        real = data_row(preset, seeds)
        print(
            f"| {preset} | the data itself ({len(seeds)} draws of 2500 fresh points) | {mean_se(real['modes'])} "
            f"| {mean_se([100 * v for v in real['hq']])} | {mean_se(real['rkl'])} | |"
        )
        target = TARGETS.get(preset)
        command = " ".join(experiment_of(preset) + args.extra)
        for method in rows[0]:  # plain sampling, then each D-driven sampler the runs allow
            runs = [r[method] for r in rows]
            if method == "none":
                label, minutes = f"**gantrain `{command}`**", mean_se([r["seconds"] / 60 for r in runs])
            else:
                label = (
                    f"**… + `gantrain-eval {' '.join(SAMPLERS[method])}`** (acceptance "
                    f"{mean_se([r['acceptance'] for r in runs])}, D calls per sample "
                    f"{mean_se([r['d_calls_per_sample'] for r in runs])})"
                )
                minutes = f"+ {mean_se([r['seconds'] / 60 for r in runs])} sampling"
            print(
                f"| {preset} | {label} | {mean_se([r['modes'] for r in runs])} "
                f"| {mean_se([100 * r['hq'] for r in runs])} | {mean_se([r['rkl'] for r in runs])} | {minutes} |"
            )
            if target:
                print(target_row(target["none" if method == "none" else "driven"], runs))
    for preset in args.presets:
        print_curve(preset, args.out, seeds)
    for preset in args.presets:
        for method in by_preset[preset][0]:
            print(f"scatter grid: {scatter_grid(preset, args.out, seeds, method)}")
    json.dump(by_preset, open(args.out / "results.json", "w"), indent=2)


def print_curve(preset: str, out: Path, seeds: list[int]) -> None:
    """The evaluations during training (runs with ``eval.every``), mean ± s.e. over seeds per step."""
    rows: dict[int, list[dict]] = {}
    for seed in seeds:
        for row in read_jsonl(out / preset / f"seed_{seed}" / "metrics.jsonl"):
            if "hq" in row:
                rows.setdefault(row["step"], []).append(row)
    if not rows:
        return
    print(f"\n{preset}: evaluations during training, mean ± s.e. over seeds\n")
    print("| step | modes | high quality (%) | reverse KL |")
    print("|---|---|---|---|")
    for step, at in sorted(rows.items()):
        print(
            f"| {step} | {mean_se([r['modes'] for r in at])} | {mean_se([100 * r['hq'] for r in at])} "
            f"| {mean_se([r['rkl'] for r in at])} |"
        )


if __name__ == "__main__":
    sys.exit(main())
