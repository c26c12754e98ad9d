"""Image folders larger than memory: DCGAN steps/s and peak memory on a folder of generated
64x64 PNGs, in memory and streamed (``dataset.in_memory=false``, with and without the cache),
measured one after the other in one invocation on the same machine.

The folder (made once by this script: a random ellipse on a random gradient per image) is used
through the real command, ``gantrain dataset=folder dataset.path=<folder> ...``; each run is its own
process, and its peak resident memory (the kernel's ``VmHWM``) is read while it runs. Steps/s is the median
of the per-step rates after the first (compiling) step.

Usage: ``python scripts/stream_benchmark.py [--images 200000] [--steps 3] [--out outputs/stream_benchmark]
[-- extra overrides, e.g. model.g_channels=32 model.d_channels=32]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

SIDE = 64
MODES = {
    "in memory": ["dataset.in_memory=true"],
    "streamed, cache": ["dataset.in_memory=false", "dataset.cache=true"],
    "streamed, no cache": ["dataset.in_memory=false", "dataset.cache=false"],
}


def make_folder(folder: Path, n: int) -> float:
    """``n`` PNGs in 100 subfolders (skipped when they are there); returns seconds taken."""
    start = time.perf_counter()

    def one(i: int) -> None:
        path = folder / f"{i % 100:02d}" / f"{i:07d}.png"
        if path.exists():
            return
        rng = np.random.default_rng(i)
        ramp = np.linspace(0, 1, SIDE)[None, :, None] * rng.uniform(0, 255, 3) + rng.uniform(0, 64, 3)
        image = Image.fromarray(np.broadcast_to(ramp, (SIDE, SIDE, 3)).clip(0, 255).astype(np.uint8))
        x, y = rng.uniform(0, SIDE, 2)
        w, h = rng.uniform(8, 32, 2)
        ImageDraw.Draw(image).ellipse([x - w / 2, y - h / 2, x + w / 2, y + h / 2], fill=tuple(rng.integers(0, 256, 3)))
        image.save(path)

    for sub in range(100):
        (folder / f"{sub:02d}").mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(one, range(n)))
    return time.perf_counter() - start


def train(name: str, folder: Path, out: Path, steps: int, extra: list[str]) -> dict:
    run_dir = out / "runs" / name.replace(", ", "_").replace(" ", "_")
    command = [
        "gantrain",
        "dataset=folder",
        f"dataset.path={folder}",
        f"dataset.resolution={SIDE}",
        "model=dcgan",
        f"train.steps={steps}",
        "train.log_every=1",
        f"train.sample_every={steps}",
        f"train.checkpoint_every={steps}",
        f"hydra.run.dir={run_dir}",
        *MODES[name],
        *extra,
    ]
    start = time.perf_counter()
    with open(out / f"{run_dir.name}.log", "w") as log:
        child = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
        )
        peak = 0
        while child.poll() is None:
            peak = max(peak, peak_rss_kib(child.pid))
            time.sleep(0.2)
    if child.returncode:
        raise SystemExit(f"{name}: gantrain failed, see {out / (run_dir.name + '.log')}")
    rates = [json.loads(line)["steps_per_sec"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {
        "steps_per_sec": float(np.median(rates[1:])),
        "peak_rss_gib": peak / 2**20,
        "minutes": (time.perf_counter() - start) / 60,
    }


def peak_rss_kib(pid: int) -> int:
    """The process's peak resident memory so far (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM:")), 0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=200_000, help="PNGs in the folder (200,000: 2.29 GiB decoded)")
    parser.add_argument("--steps", type=int, default=3, help="generator steps per run (the first is not timed)")
    parser.add_argument("--modes", nargs="+", default=list(MODES), choices=list(MODES))
    parser.add_argument("--out", type=Path, default=Path("outputs/stream_benchmark"))
    parser.add_argument("extra", nargs="*", help="overrides for every run, after --")
    args = parser.parse_args()
    folder = (args.out / "images").resolve()
    made = make_folder(folder, args.images)
    decoded = args.images * SIDE * SIDE * 3 / 2**30
    from gantrain.data.folder import list_images
    from gantrain.data.stream import ImageStream

    start = time.perf_counter()
    ImageStream.open(folder, list_images(folder), SIDE, 3, cache=True).prepare()  # what a first streamed run does
    cached = time.perf_counter() - start
    results = {name: train(name, folder, args.out, args.steps, args.extra) for name in args.modes}

    print(
        f"\n{args.images} PNGs of {SIDE}x{SIDE}x3 ({decoded:.2f} GiB decoded), made in {made:.0f} s; "
        f"cache brought up to date in {cached:.0f} s; {args.steps} steps per run, overrides: {args.extra or 'none'}\n"
    )
    print("| dataset | steps/s | vs in memory | peak RSS (GiB) | below decoded size | minutes |")
    print("|---|---|---|---|---|---|")
    base = results.get("in memory", {}).get("steps_per_sec")
    for name, r in results.items():
        ratio = f"{r['steps_per_sec'] / base:.2f}x" if base else ""
        print(
            f"| {name} | {r['steps_per_sec']:.4g} | {ratio} | {r['peak_rss_gib']:.2f} "
            f"| {'yes' if r['peak_rss_gib'] < decoded else 'no'} | {r['minutes']:.1f} |"
        )
    json.dump(results, open(args.out / "results.json", "w"), indent=2)


if __name__ == "__main__":
    sys.exit(main())
