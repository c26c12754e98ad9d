"""The class-conditional MNIST preset against its targets: ``experiment=mnist_conditional``.

For each seed: one ``gantrain experiment=mnist_conditional train.seed=<seed>`` run (timed), then
``gantrain-eval`` on its last checkpoint (2500 samples, 250 per class: classifier FID, class
accuracy, intra-FID ...). Prints the mean and standard error over seeds beside the targets and the
unconditional preset's FID, and copies each run's last preview grid (one row per class) next to
the results.

Usage: ``python scripts/conditional_benchmark.py --data ../shared/data/mnist.npz [--seeds 1]
[--out outputs/conditional_benchmark] [-- extra overrides]``
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from toy_benchmark import mean_se

TARGETS = {"class_accuracy": 0.97, "fid": 30.0}  # fid: the unconditional preset's (README, "MNIST")
MINUTES = 30


def run_one(seed: int, args) -> dict:
    """Train and evaluate one run in subprocesses; returns gantrain-eval's metrics plus ``seconds``."""
    run_dir = args.out / f"seed_{seed}"
    done = run_dir / "benchmark.json"
    if done.exists():
        return json.loads(done.read_text())
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    command = ["gantrain", "experiment=mnist_conditional", f"dataset.path={args.data}", f"train.seed={seed}",
               f"hydra.run.dir={run_dir}", *args.overrides]
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with open(f"{run_dir}.log", "w") as log:
        subprocess.run(command, check=True, stdout=log, stderr=subprocess.STDOUT, env=env)
    seconds = time.perf_counter() - start
    evaluated = subprocess.run(["gantrain-eval", f"run_dir={run_dir}"], check=True, capture_output=True, text=True, env=env)
    result = {**json.loads(evaluated.stdout.strip().splitlines()[-1]), "seconds": seconds, "command": " ".join(command)}
    done.write_text(json.dumps(result, indent=2) + "\n")
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if grids:
        shutil.copy(grids[-1], args.out / f"grid_seed_{seed}.png")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="mnist.npz")
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--out", type=Path, default=Path("outputs/conditional_benchmark"))
    parser.add_argument("overrides", nargs="*", help="extra overrides after --")
    args = parser.parse_args()
    rows = [run_one(seed, args) for seed in range(args.seeds)]
    print(f"experiment=mnist_conditional, {len(rows)} seed(s), mean ± s.e.; each run alone on this machine")
    print("| | classifier FID ↓ | class accuracy ↑ | intra-FID ↓ | IS ↑ | classes hit | minutes a run |")
    print("|---|---|---|---|---|---|---|")
    print(f"| mnist_conditional | {mean_se([r['fid'] for r in rows])} | {mean_se([100 * r['class_accuracy'] for r in rows])} % "
          f"| {mean_se([r['intra_fid'] for r in rows])} | {mean_se([r['is'] for r in rows])} "
          f"| {mean_se([r['classes_hit'] for r in rows])} | {mean_se([r['seconds'] / 60 for r in rows])} |")
    print(f"| target | ≤ {TARGETS['fid']} (the unconditional preset) | ≥ {100 * TARGETS['class_accuracy']:.0f} % | | | 10 "
          f"| ≤ {MINUTES} |")
    for r in rows:
        print(f"  step {r['step']}: fid {r['fid']:.2f}, class_accuracy {r['class_accuracy']:.4f}, "
              f"intra_fid {r['intra_fid']:.2f}, {r['seconds'] / 60:.1f} min — {r['command']}")


if __name__ == "__main__":
    main()
