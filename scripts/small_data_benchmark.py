"""DiffAugment on 1 % of MNIST: an MNIST preset's networks and settings trained on
``dataset.subset=600``, without augmentation and with ``train.augment=[translation,cutout]``.

For each setting and seed: one ``gantrain experiment=<preset>`` run (by default ``mnist_dcgan_hinge``), then
``gantrain-eval`` on its last checkpoint (classifier FID/KID/IS against all 60,000 training
images, 2500 samples). Prints the mean and standard error over seeds beside the published effect
of DiffAugment, and copies each run's last sample grid next to the results.

Usage: ``python scripts/small_data_benchmark.py --data ../shared/data/mnist.npz [--seeds 2]
[--preset mnist_dcgan_hinge] [--steps N (default: the preset's)] [--jobs 2] [--out outputs/small_data]
[--settings none translation_cutout ...] [-- overrides for every run]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from benchmark_run import train_and_evaluate
from toy_benchmark import mean_se

# label (also the folder of its runs) -> overrides; "none" is the baseline the others are compared with
SETTINGS = {
    "none": [],
    "translation_cutout": ["train.augment=[translation,cutout]"],
    "translation": ["train.augment=[translation]"],
    "translation_cutout_p05": ["train.augment=[translation,cutout]", "train.augment_p=0.5"],
    "translation_cutout_auto": ["train.augment=[translation,cutout]", "train.augment_p=auto"],  # ADA
}
# DiffAugment (Zhao et al. 2020), as cited for this benchmark: StyleGAN2 on 10 % of CIFAR-10.
PUBLISHED = ("StyleGAN2 on 10 % of CIFAR-10, FID (Zhao et al. 2020)", 36.0, 14.5)
TARGET = 0.25  # FID with augmentation at least 25 % lower than without


def run_one(setting: str, seed: int, args, threads: int | None) -> dict:
    """Train and evaluate one run in subprocesses; returns gantrain-eval's metrics plus ``seconds``."""
    run_dir = args.out / setting / f"seed_{seed}"
    length = (
        []
        if args.steps is None
        else [f"train.steps={args.steps}", f"train.sample_every={args.steps}", f"train.checkpoint_every={args.steps}"]
    )
    command = [
        "gantrain",
        f"experiment={args.preset}",
        f"dataset.path={args.data}",
        f"dataset.subset={args.subset}",
        f"train.seed={seed}",
        *length,
        "eval.every=null",
        "eval.select=null",
        f"hydra.run.dir={run_dir}",
        *args.overrides,
        *SETTINGS[setting],
    ]
    result = train_and_evaluate(command, run_dir, args.out / f"{setting}_seed_{seed}.log", threads)
    shutil.copy(run_dir / "samples" / f"step_{result['step']:06d}.png", args.out / f"{setting}_seed_{seed}.png")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default="../shared/data/mnist.npz", help="MNIST .npz or IDX directory")
    parser.add_argument("--subset", type=int, default=600, help="training images (1 %% of MNIST: 600)")
    parser.add_argument("--seeds", type=int, default=2)
    parser.add_argument("--preset", default="mnist_dcgan_hinge", help="an MNIST experiment preset")
    parser.add_argument("--steps", type=int, default=None, help="generator steps per run (default: the preset's)")
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cores/jobs threads)")
    parser.add_argument("--settings", nargs="+", default=["none", "translation_cutout"], choices=list(SETTINGS))
    parser.add_argument("--out", type=Path, default=Path("outputs/small_data"))
    parser.add_argument("overrides", nargs="*", help="overrides for every run, after --")
    args = parser.parse_args()
    args.data = str(Path(args.data).resolve())
    args.out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None
    jobs = [(setting, seed) for seed in range(args.seeds) for setting in args.settings]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: run_one(*job, args, threads), jobs))
    by_setting = {s: [r for (name, _), r in zip(jobs, results, strict=True) if name == s] for s in args.settings}

    steps = args.steps or results[0]["step"]
    per_run = threads or os.environ.get("TF_NUM_INTRAOP_THREADS", "all")
    print(
        f"\nexperiment={args.preset}",
        *args.overrides,
        f"on {args.subset} images, {steps} steps,",
        f"{args.seeds} seeds, {args.jobs} run(s) at a time, {per_run} kernel thread(s) each; metrics on 2500 samples\n",
    )
    print("| train.augment | classifier FID | KID | IS | classes hit | minutes per run |")
    print("|---|---|---|---|---|---|")
    for setting, rows in by_setting.items():
        print(
            f"| {setting} | {mean_se([r['fid'] for r in rows])} | {mean_se([r['kid'] for r in rows])} "
            f"| {mean_se([r['is'] for r in rows])} | {mean_se([r['classes_hit'] for r in rows])} "
            f"| {mean_se([r['seconds'] / 60 for r in rows])} |"
        )
    name, before, after = PUBLISHED
    print(f"| published: {name} | {before} -> {after} ({1 - after / before:.0%} lower) | | | | |\n")
    if "none" in by_setting:  # the baseline the others are compared with
        plain = np.mean([r["fid"] for r in by_setting["none"]])
        for setting in (s for s in args.settings if s != "none"):
            augmented = np.mean([r["fid"] for r in by_setting[setting]])
            print(
                f"{setting}: FID {1 - augmented / plain:.0%} lower than without augmentation "
                f"(target: at least {TARGET:.0%}): {'met' if augmented <= (1 - TARGET) * plain else 'NOT met'}"
            )
    print(f"sample grids: {args.out}/<setting>_seed_<seed>.png")
    saved = args.out / "results.json"  # kept across calls that run different settings into one folder
    earlier = json.loads(saved.read_text()) if saved.exists() else {}
    saved.write_text(json.dumps({**earlier, **by_setting}, indent=2))


if __name__ == "__main__":
    sys.exit(main())
