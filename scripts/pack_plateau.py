"""Why packing learns slowly at first on grid25: PacGAN's discriminator trained alone.

D (``experiment=pacgan_grid25``'s maxout network, Adam 1e-4, β₁ 0.8, 100 packs per batch) learns
to tell packs of real grid25 points from packs of the same points moved by N(0, 0.3²) noise — fakes
with the data's coarse shape but off its modes, as a generator that has learned the coarse shape
makes them. For each pack size it prints D's loss (2 log 2 = 1.386 is chance) and gradient norm
after 1000, 2000 and 3000 updates, for packs of independent points and, as a control, for packs of
m copies of one point (the same information as pack 1, in the packed input's width). Overrides
after ``--`` change the preset's D or its optimizer (``model.init_std=null``, ``train.d_lr=1e-3``).

Usage: ``python scripts/pack_plateau.py [--packs 1 2 4] [--steps 3000] [-- overrides]``
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf

from gantrain import api
from gantrain.data import DATASETS
from gantrain.models import build_models


def train_discriminator(
    m: int, copies: bool, steps: int, overrides: tuple[str, ...] = (), seed: int = 0
) -> list[tuple[int, float, float]]:
    """(update, loss, gradient norm) every 1000 updates of D alone on packs of ``m``."""
    cfg = api.compose(["experiment=pacgan_grid25", *overrides])
    data = DATASETS.build(cfg.dataset).x
    rng = np.random.default_rng(seed)
    keras.utils.set_random_seed(seed)
    _, d = build_models(cfg.model, (2,), pack=m)
    optimizer = keras.optimizers.Adam(cfg.train.d_lr, beta_1=cfg.train.beta1, beta_2=cfg.train.beta2)

    @tf.function
    def update(real, fake):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softplus(-d(real))) + tf.reduce_mean(tf.nn.softplus(d(fake)))
        grads = tape.gradient(loss, d.trainable_variables)
        optimizer.apply(grads, d.trainable_variables)
        return loss, tf.linalg.global_norm(grads)

    rows = []
    for i in range(1, steps + 1):
        real = data[rng.integers(0, len(data), 100 * m)]
        fake = (real + rng.normal(0, 0.3, real.shape)).astype(np.float32)
        if copies:
            real, fake = np.tile(real[:100], (1, m)), np.tile(fake[:100], (1, m))
        else:  # consecutive points side by side, as train.pack packs them
            real, fake = real.reshape(100, 2 * m), fake.reshape(100, 2 * m)
        loss, norm = update(tf.constant(real), tf.constant(fake))
        if i % 1000 == 0:
            rows.append((i, float(loss), float(norm)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--packs", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("overrides", nargs="*", help="overrides of experiment=pacgan_grid25, after --")
    args = parser.parse_args()
    print("experiment=pacgan_grid25", *args.overrides)
    print(
        "| pack | packs of | "
        + " | ".join(f"loss, grad norm at {s}" for s in range(1000, args.steps + 1, 1000))
        + " | seconds |"
    )
    print("|---|---|" + "---|" * (args.steps // 1000) + "---|")
    for m in args.packs:
        for copies in [False, True] if m > 1 else [False]:
            start = time.perf_counter()
            rows = train_discriminator(m, copies, args.steps, tuple(args.overrides))
            cells = " | ".join(f"{loss:.3f}, {norm:.3g}" for _, loss, norm in rows)
            kind = f"{m} copies of one point" if copies else (f"{m} independent points" if m > 1 else "single points")
            print(f"| {m} | {kind} | {cells} | {time.perf_counter() - start:.0f} |", flush=True)


if __name__ == "__main__":
    main()
