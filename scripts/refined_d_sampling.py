"""Does a discriminator trained further against the final generator choose better samples?

DRS and MH-GAN rest on D's logit being ``log p_data / p_G`` for the G they sample from; the D a run
ends with is one player's state in a game, regularised (R1) and with its learning rate decayed to
zero. This script trains a copy of a run's D further against its frozen G — the logistic loss whose
optimum is that logit, no penalty, fresh real points and fresh noise in every batch, Adam — and
prints the D-driven rows (every sampler of ``benchmark_run.SAMPLERS``, as ``gantrain-eval``) with the
run's own D and with the copy. The run directory is only read.

Usage: ``python scripts/refined_d_sampling.py <run dir> [--steps 20000] [--batch 1024] [--lr 1e-3]``
"""

from __future__ import annotations

import argparse
import time

import keras
import numpy as np
import tensorflow as tf
from benchmark_run import SAMPLERS
from omegaconf import OmegaConf

from gantrain.data import DATASETS
from gantrain.evaluation.draw import driven_draw, held_out_examples
from gantrain.evaluation.measure import sample_metrics
from gantrain.evaluation.options import MetricOptions
from gantrain.evaluation.plan import evaluation_plan
from gantrain.evaluation.saved_run import (
    checkpoint_path,
    restore_discriminator,
    restore_models,
    saved_run,
)


def sampler_options(keys: tuple[str, ...]) -> MetricOptions:
    """The options ``gantrain-eval <keys>`` samples with (``benchmark_run.SAMPLERS``'s keys)."""
    return OmegaConf.to_object(OmegaConf.merge(OmegaConf.structured(MetricOptions), OmegaConf.from_dotlist(list(keys))))


def refine(generator, discriminator, data: np.ndarray, steps: int, batch: int, lr: float, seed: int) -> None:
    """Train ``discriminator`` in place against the frozen ``generator``, printing D's mean loss every 1000 updates."""
    rng = np.random.default_rng([seed, 5])
    optimizer = keras.optimizers.Adam(lr, beta_1=0.5)
    z_dim = generator.input_shape[-1]

    @tf.function
    def update(real, z):
        fake = generator(z, training=False)
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.nn.softplus(-discriminator(real, training=True))) + tf.reduce_mean(
                tf.nn.softplus(discriminator(fake, training=True))
            )
        optimizer.apply(tape.gradient(loss, discriminator.trainable_variables), discriminator.trainable_variables)
        return loss

    window = []
    for i in range(1, steps + 1):
        real = data[rng.integers(0, len(data), batch)]
        window.append(float(update(tf.constant(real), tf.constant(rng.standard_normal((batch, z_dim), np.float32)))))
        if i % 1000 == 0:
            print(f"update {i}: D's loss {np.mean(window):.4f}", flush=True)
            window = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--num-samples", type=int, default=2500)
    args = parser.parse_args()
    run, cfg = saved_run(args.run_dir)
    path = checkpoint_path(run, "latest")
    dataset = DATASETS.build(cfg.dataset)
    if dataset.centers is None:
        raise SystemExit(
            f"refined_d_sampling.py: measures mixtures of Gaussians (ring8, grid25); this run is on {cfg.dataset.name}"
        )
    generator, discriminator = restore_models(cfg, dataset, path)
    restore_discriminator(discriminator, path)
    plan = evaluation_plan(cfg.dataset.name, "auto", key="features")
    held_out, seed = held_out_examples(cfg.dataset), int(cfg.train.seed)

    def rows(which: str) -> None:
        for name, keys in SAMPLERS.items():
            x, cost = driven_draw(generator, discriminator, held_out, sampler_options(keys), args.num_samples, seed)
            m, _ = sample_metrics(cfg.dataset, dataset, x, plan)
            print(
                f"| {which} | {name} | {m['modes']} | {100 * m['hq']:.2f} | {m['rkl']:.4f} "
                f"| {cost['acceptance']:.3f} | {cost['d_calls_per_sample']:.1f} |",
                flush=True,
            )

    print(
        "| D | sampler | modes | high quality (%) | reverse KL | acceptance | D calls per sample |\n"
        "|---|---|---|---|---|---|---|"
    )
    rows("the run's")
    start = time.perf_counter()
    refine(generator, discriminator, dataset.x, args.steps, args.batch, args.lr, seed)
    print(f"({args.steps} updates of {args.batch} in {(time.perf_counter() - start) / 60:.1f} minutes)")
    rows(f"+ {args.steps} updates")


if __name__ == "__main__":
    main()
