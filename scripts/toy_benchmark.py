"""The 2-D mode-coverage benchmark of VEEGAN/PacGAN with the ``ring8`` and ``grid25`` presets.

For each preset and seed: one ``gantrain experiment=<preset> train.seed=<seed>`` run, then
``gantrain-eval`` on its final checkpoint (2500 samples). Prints, per preset, the mean and standard
error over seeds of modes, high-quality fraction and reverse KL next to PacGAN's Table 1 rows, and
the wall time per run; saves one PNG per preset with a scatter plot of every seed's samples.

Usage: ``python scripts/toy_benchmark.py [--seeds 10] [--jobs 1] [--out outputs/toy_benchmark]
[--presets grid25 ring8] [-- extra overrides]``
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf
from PIL import Image

from gantrain.data import DATASETS
from gantrain.samples import PAD, scatter

# PacGAN (Lin et al. 2018), Table 1: mean over 10 trials of (modes, high-quality %, reverse KL).
PUBLISHED = {
    "grid25": [("GAN", 17.3, 94.8, 0.70), ("PacGAN4", 24.8, 93.6, 0.04)],
    "ring8": [("GAN", 6.3, 98.2, 0.45), ("PacGAN2", 7.9, 95.6, 0.07)],
}
TARGETS = {"grid25": (24.9, 97.0, 0.02), "ring8": (8.0, 98.0, 0.03)}


def run_one(preset: str, seed: int, out: Path, extra: list[str], threads: int | None) -> dict:
    """Train and evaluate one seed in subprocesses; returns the eval metrics plus ``seconds``."""
    run_dir = out / preset / f"seed_{seed}"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    if threads is not None:
        # Only the kernels' threads are split between jobs: pinning TensorFlow's inter-op pool
        # to one thread serialises D's, GON's and the penalty's independent ops (measured 30
        # instead of 52 steps/s for the grid25 preset).
        env["TF_NUM_INTRAOP_THREADS"] = str(threads)
    done = run_dir / "benchmark.json"  # eval.json is gantrain-eval's, whichever checkpoint it last read
    if not done.exists():
        command = ["gantrain", f"experiment={preset}", f"train.seed={seed}", f"hydra.run.dir={run_dir}", *extra]
        if (run_dir / ".hydra" / "config.yaml").exists():
            command = ["gantrain", f"resume={run_dir}"]  # an interrupted benchmark picks up where it was
        start = time.perf_counter()
        with open(out / f"{preset}_seed_{seed}.log", "w") as log:
            subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
        seconds = time.perf_counter() - start
        subprocess.run(
            ["gantrain-eval", f"run_dir={run_dir}", f"export={run_dir / 'samples.npz'}"],
            check=True, capture_output=True, env=env,
        )
        result = json.loads((run_dir / "eval.json").read_text())
        result["seconds"] = seconds
        done.write_text(json.dumps(result, indent=2) + "\n")
    return json.loads(done.read_text())


def mean_se(values: list[float]) -> str:
    """"mean ± standard error"; one value has no standard error, and says so."""
    mean = float(np.mean(values))
    if len(values) == 1:
        return f"{mean:.3g} (one seed)"
    return f"{mean:.3g} ± {float(np.std(values, ddof=1) / math.sqrt(len(values))):.2g}"


def scatter_grid(preset: str, out: Path, seeds: list[int]) -> Path:
    """One scatter panel per seed (generated orange over real blue), tiled in rows of five."""
    real = DATASETS.build(OmegaConf.create({"name": preset})).x[:2500]
    panels = [scatter(np.load(out / preset / f"seed_{s}" / "samples.npz")["x"], real, size=300) for s in seeds]
    cols = min(5, len(panels))
    rows = math.ceil(len(panels) / cols)
    grid = Image.new("RGB", (cols * (300 + PAD) + PAD, rows * (300 + PAD) + PAD), (128, 128, 128))
    for i, panel in enumerate(panels):
        grid.paste(panel, (PAD + (i % cols) * (300 + PAD), PAD + (i // cols) * (300 + PAD)))
    path = out / f"{preset}.png"
    grid.save(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", nargs="+", default=["grid25", "ring8"])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=1, help="runs at a time (each gets cores/jobs threads); 1 times each run on the whole machine")
    parser.add_argument("--out", type=Path, default=Path("outputs/toy_benchmark"))
    parser.add_argument("extra", nargs="*", help="overrides for every run, after --")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    threads = max(1, (os.cpu_count() or 1) // args.jobs) if args.jobs > 1 else None  # None: TensorFlow's default
    seeds = list(range(args.seeds))
    jobs = [(preset, seed) for preset in args.presets for seed in seeds]
    with ThreadPoolExecutor(args.jobs) as pool:
        results = list(pool.map(lambda job: run_one(*job, args.out, args.extra, threads), jobs))
    by_preset = {preset: [r for (p, _), r in zip(jobs, results) if p == preset] for preset in args.presets}

    print(f"\n{len(seeds)} seeds per preset, {args.jobs} run(s) at a time, {threads or 'all'} kernel thread(s) each\n")
    print("| preset | method | modes | high quality (%) | reverse KL | minutes per run |")
    print("|---|---|---|---|---|---|")
    for preset, rows in by_preset.items():
        for name, modes, hq, rkl in PUBLISHED.get(preset, []):
            print(f"| {preset} | {name} (PacGAN Table 1) | {modes} | {hq} | {rkl} | |")
        target = TARGETS.get(preset)
        print(
            f"| {preset} | **gantrain `experiment={preset}`** | {mean_se([r['modes'] for r in rows])} "
            f"| {mean_se([100 * r['hq'] for r in rows])} | {mean_se([r['rkl'] for r in rows])} "
            f"| {mean_se([r['seconds'] / 60 for r in rows])} |"
        )
        if target:
            met = (np.mean([r["modes"] for r in rows]) >= target[0]
                   and 100 * np.mean([r["hq"] for r in rows]) >= target[1]
                   and np.mean([r["rkl"] for r in rows]) <= target[2])
            print(f"|  | target: >= {target[0]} modes, >= {target[1]} %, <= {target[2]} | {'met' if met else 'NOT met'} | | | |")
    for preset in args.presets:
        print(f"scatter grid: {scatter_grid(preset, args.out, seeds)}")
    json.dump(by_preset, open(args.out / "results.json", "w"), indent=2)


if __name__ == "__main__":
    sys.exit(main())
