"""What an R3GAN step costs on this machine, side by side with the presets it is measured against.

Every step below is gantrain's compiled training step, built as ``gantrain`` builds it, timed in
turns in one process (rounds of ``--steps`` steps each, median of the rounds), so that a change in
the machine's load falls on all of them alike:

1. ``experiment=r3gan_mnist`` beside ``experiment=mnist_dcgan_hinge`` on MNIST: ms per step, images
   per second (the preset's batch over the step's time) and GFLOP per image, with R1 + R2, R1 alone
   and no penalty (where R3GAN's step spends its time), and at batch 64;
2. r3gan_mnist's networks on 32x32 RGB images: the shape at which the reference PyTorch code
   (brownvc/R3GAN, whose generator makes RGB images) can be timed at the same widths;
3. the ``grid25`` preset (R1): the penalty's gradient from the call of D that scores the batch (as
   gantrain does) against a call of D of its own on the real examples (as before), the saving of one
   forward pass.

Usage: ``python scripts/r3gan_benchmark.py --data ../shared/data/mnist.npz [--steps 5] [--rounds 5]``
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import numpy as np
import tensorflow as tf
from bench import gantrain_step, step_flops

from gantrain import api
from gantrain.config import check_train
from gantrain.data import DATASETS
from gantrain.training.gan import build_gan
from gantrain.training.penalties import Penalty, half_squared_norm_cost
from gantrain.training.step import TrainStep

R3GAN = ["experiment=r3gan_mnist"]
MNIST_CASES = {
    "mnist_dcgan_hinge (batch 64)": ["experiment=mnist_dcgan_hinge"],
    "r3gan_mnist, R1 + R2 (batch 32)": R3GAN,
    "r3gan_mnist, R1 alone": [*R3GAN, "loss.penalty=r1"],
    "r3gan_mnist, no penalty": [*R3GAN, "loss.penalty=none", "~train.schedule.gamma"],
    "r3gan_mnist at batch 64": [*R3GAN, "train.batch_size=64"],
}

# R1 as it was computed before: D called once more, on the real examples alone.
R1_OWN_CALL = Penalty(lambda real, fake, eps, noise: real, half_squared_norm_cost)


def mnist(path: str) -> np.ndarray:
    with np.load(path) as stored:
        return stored["x_train"][..., None].astype(np.float32) / 127.5 - 1


def timed_in_turns(steps: dict[str, TrainStep], per_round: int, rounds: int) -> dict[str, float]:
    """Seconds per generator step of each compiled step, the median of ``rounds`` rounds taken in turns."""
    for step in steps.values():
        step.compiled(tf.constant(1))  # tracing and the first call, untimed
    times: dict[str, list[float]] = {name: [] for name in steps}
    for _ in range(rounds):
        for name, step in steps.items():
            start = time.perf_counter()
            step.compiled(tf.constant(per_round))
            times[name].append((time.perf_counter() - start) / per_round)
    return {name: float(np.median(t)) for name, t in times.items()}


def image_table(cases: dict[str, list[str]], images: np.ndarray, args) -> None:
    steps = {name: gantrain_step(api.compose(overrides), images) for name, overrides in cases.items()}
    seconds = timed_in_turns(steps, args.steps, args.rounds)
    print(f"\n{'step':<34}{'ms/step':>9}{'images/s':>10}{'GFLOP/image':>13}")
    for name, step in steps.items():
        batch = step.batch_size
        print(
            f"{name:<34}{1000 * seconds[name]:>9.0f}{batch / seconds[name]:>10.1f}"
            f"{step_flops(step) / batch / 1e9:>13.2f}"
        )


def toy_table(args) -> None:
    cfg = api.compose(["experiment=grid25"])
    points = DATASETS.build(cfg.dataset).x
    one_call = gantrain_step(cfg, points)
    gan = build_gan(cfg, points.shape[1:])
    gan = dataclasses.replace(gan, objective=dataclasses.replace(gan.objective, penalty=R1_OWN_CALL))
    own_call = TrainStep(gan, tf.constant(points), check_train(cfg.train))
    steps = {"R1 from the scoring call of D": one_call, "R1 in a call of D of its own": own_call}
    seconds = timed_in_turns(steps, args.steps * 50, args.rounds)
    print(f"\n{'grid25 preset step (R1)':<34}{'steps/s':>9}{'GFLOP/step':>12}")
    for name, step in steps.items():
        print(f"{name:<34}{1 / seconds[name]:>9.1f}{step_flops(step) / 1e9:>12.3f}")
    saving = seconds["R1 in a call of D of its own"] / seconds["R1 from the scoring call of D"]
    print(f"one call instead of two: {saving:.2f}x the steps/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", required=True, help="MNIST's mnist.npz")
    parser.add_argument("--steps", type=int, default=5, help="generator steps per timed round (x50 for grid25)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds taken in turns; the median is shown")
    args = parser.parse_args()
    threads = tf.config.threading.get_intra_op_parallelism_threads() or "all"
    print(f"TensorFlow {tf.__version__}, {threads} kernel threads")
    images = mnist(args.data)
    image_table(MNIST_CASES, images, args)
    rgb = np.random.default_rng(0).uniform(-1, 1, (4096, 32, 32, 3)).astype(np.float32)
    image_table({"r3gan_mnist's networks, 32x32x3": R3GAN}, rgb, args)
    toy_table(args)


if __name__ == "__main__":
    main()
