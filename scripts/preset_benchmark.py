"""An image preset against its targets: ``mnist_dcgan_hinge``, ``mnist_dcgan_wgan_gp``, ``mnist_conditional``,
``stacked_mnist``, or R3GAN's ``r3gan_mnist`` or ``r3gan_stacked_mnist``.

For each seed: one ``gantrain experiment=<preset> dataset.path=<data> train.seed=<seed>`` run
(timed), then ``gantrain-eval`` on its last checkpoint (the preset's own metrics: classifier
FID/KID/IS, precision/recall/density/coverage and class coverage for MNIST, class accuracy and
intra-FID for the conditional preset, modes of 1000 and KL on 26,000 samples for stacked MNIST),
and again with each discriminator-driven
sampler that ``--sampling`` names. Prints the mean and standard error over seeds beside the targets
and the published rows, then each run's evaluations during training against minutes since its start
(read from the run's TensorBoard events), and copies each run's last preview grid next to the
results.

Usage: ``python scripts/preset_benchmark.py --preset stacked_mnist --data ../shared/data/mnist.npz
[--seeds 3] [--first-seed 0] [--jobs 1] [--sampling drs drs_exact mh] [--out outputs/preset_benchmark]
[-- extra overrides]``
"""

from __future__ import annotations

import argparse
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmark_run import (
    SAMPLERS,
    add_seed_arguments,
    evaluate_driven,
    pack_of,
    seeds_of,
    threads_per_run,
    train_and_evaluate,
)
from toy_benchmark import mean_se

# preset: (the metrics in the table, {metric: (comparison, target)}, minutes a run, published rows)
UNCONDITIONAL_MNIST = (
    ("fid", "kid", "is", "precision", "recall", "density", "coverage", "classes_hit", "class_kl"),
    {"fid": ("≤", 15.0), "classes_hit": ("≥", 10)},
)
PRESETS = {
    "mnist_dcgan_hinge": (*UNCONDITIONAL_MNIST, 30, {}),
    "mnist_dcgan_wgan_gp": (*UNCONDITIONAL_MNIST, 150, {}),
    "mnist_conditional": (
        ("fid", "class_accuracy", "intra_fid", "is", "classes_hit"),
        {"fid": ("≤", 30.0), "class_accuracy": ("≥", 0.97)},
        30,
        {},
    ),
    # R3GAN's targets: the MNIST preset's FID beaten in its minutes; the paper's Stacked MNIST row.
    "r3gan_mnist": (*UNCONDITIONAL_MNIST[:1], {"fid": ("≤", 6.0), "classes_hit": ("≥", 10)}, 30, {}),
    "r3gan_stacked_mnist": (
        ("modes", "mode_kl"),
        {"modes": ("≥", 1000), "mode_kl": ("≤", 0.03)},
        60,
        {"R3GAN (Huang et al. 2024)": {"modes": 1000.0, "mode_kl": 0.029}},
    ),
    "stacked_mnist": (
        ("modes", "mode_kl"),
        {"modes": ("≥", 990), "mode_kl": ("≤", 0.1)},
        60,
        {
            "PacDCGAN2 (PacGAN Table 2, 100k iterations)": {"modes": 1000.0, "mode_kl": 0.06},
            "DCGAN (the same table)": {"modes": 99.0, "mode_kl": 3.40},
        },
    ),
}


def run_one(preset: str, seed: int, args, threads: int | None) -> dict:
    """Train and evaluate one run in subprocesses; returns gantrain-eval's metrics plus ``seconds``,
    ``command``, ``curve`` (the evaluations during training) and ``driven`` (each sampler's metrics)."""
    run_dir = args.out / preset / f"seed_{seed}"
    command = [
        "gantrain",
        f"experiment={preset}",
        f"dataset.path={args.data}",
        f"train.seed={seed}",
        f"hydra.run.dir={run_dir}",
        *args.overrides,
    ]
    result = train_and_evaluate(command, run_dir, Path(f"{run_dir}.log"), threads)
    grids = sorted((run_dir / "samples").glob("step_*.png"))
    if grids:
        shutil.copy(grids[-1], args.out / preset / f"grid_seed_{seed}.png")
    driven = {sampler: evaluate_driven(run_dir, sampler, threads) for sampler in args.sampling}
    return {**result, "curve": curve(run_dir, PRESETS[preset][0]), "driven": driven}


def curve(run_dir: Path, metrics: tuple[str, ...]) -> list[dict]:
    """The run's evaluations during training, each with the minutes since the run's first event."""
    import tensorflow as tf

    first, points = None, {}
    for events in sorted((run_dir / "tb").glob("events.*")):
        for record in tf.data.TFRecordDataset(str(events)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            first = event.wall_time if first is None else min(first, event.wall_time)
            for value in event.summary.value:
                if value.tag in metrics:
                    point = points.setdefault(event.step, {"step": event.step, "minutes": event.wall_time})
                    point[value.tag] = float(tf.make_ndarray(value.tensor))
    return [{**p, "minutes": (p["minutes"] - first) / 60} for _, p in sorted(points.items())]


def shown(metric: str, value: float) -> str:
    return f"{100 * value:.1f} %" if metric == "class_accuracy" else f"{value:.3g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS))
    parser.add_argument("--data", required=True, help="mnist.npz")
    add_seed_arguments(parser, default=1)
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        help="runs at a time (each gets cores/jobs threads); 1 times each run on the whole machine",
    )
    parser.add_argument(
        "--sampling",
        nargs="*",
        default=[],
        choices=list(SAMPLERS),
        help="discriminator-driven samplers to report beside plain sampling (drs_exact: drs_percentile=null)",
    )
    parser.add_argument("--out", type=Path, default=Path("outputs/preset_benchmark"))
    parser.add_argument("overrides", nargs="*", help="extra overrides after --")
    args = parser.parse_args()
    if args.sampling and (pack := pack_of([f"experiment={args.preset}", *args.overrides])) > 1:
        # gantrain-eval would refuse it after training
        parser.error(f"--sampling: this D judges packs of {pack} (train.pack), not single samples")
    metrics, targets, minutes, published = PRESETS[args.preset]
    threads = threads_per_run(args.jobs)
    seeds = seeds_of(args)
    with ThreadPoolExecutor(args.jobs) as pool:
        rows = list(pool.map(lambda seed: run_one(args.preset, seed, args, threads), seeds))
    scale = {"class_accuracy": 100}
    print(
        f"experiment={args.preset}, seeds {seeds[0]}–{seeds[-1]}, mean ± s.e.; {args.jobs} run(s) at a time, "
        f"{threads or 'all'} kernel thread(s) each (a run's minutes are its own only if nothing else shared the cores)"
    )
    print(f"| | {' | '.join(metrics)} | minutes a run |")
    print("|---|" + "---|" * (len(metrics) + 1))
    print(
        f"| {args.preset} | "
        + " | ".join(mean_se([scale.get(m, 1) * r[m] for r in rows]) for m in metrics)
        + f" | {mean_se([r['seconds'] / 60 for r in rows])} |"
    )
    for sampler in args.sampling:
        runs = [r["driven"][sampler] for r in rows]
        print(
            f"| … + `gantrain-eval {' '.join(SAMPLERS[sampler])}` "
            f"(acceptance {mean_se([r['acceptance'] for r in runs])}, "
            f"D calls per sample {mean_se([r['d_calls_per_sample'] for r in runs])}) | "
            + " | ".join(mean_se([scale.get(m, 1) * r[m] for r in runs]) for m in metrics)
            + f" | + {mean_se([r['seconds'] / 60 for r in runs])} |"
        )
    print(
        "| target | "
        + " | ".join(f"{targets[m][0]} {shown(m, targets[m][1])}" if m in targets else "" for m in metrics)
        + f" | ≤ {minutes} |"
    )
    for name, row in published.items():
        print(f"| {name} | " + " | ".join(shown(m, row[m]) if m in row else "" for m in metrics) + " | |")
    for seed, r in zip(seeds, rows, strict=True):
        print(f"seed {seed}, step {r['step']}, {r['seconds'] / 60:.1f} min — {r['command']}")
        for sampler, d in r["driven"].items():
            print(f"  {sampler}: " + ", ".join(f"{m} {shown(m, d[m])}" for m in metrics))
        for point in r["curve"]:
            print(
                f"  step {point['step']:>6} at {point['minutes']:5.1f} min: "
                + ", ".join(f"{m} {shown(m, point[m])}" for m in metrics if m in point)
            )


if __name__ == "__main__":
    main()
