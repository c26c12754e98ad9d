"""Benchmark gantrain's training step against a textbook Keras WGAN-GP and a plain eager loop, and
the toy preset's step in graph mode and under XLA.

DCGAN table: the same work, side by side in one process: the same DCGAN G and D, MNIST, batch 64,
n_critic 5, the WGAN-GP loss, in float32, bfloat16 and XLA, beside the keras-io-style ``fit`` loop
and an eager loop. Toy table: the ``grid25`` preset's step (MLPs 4x256, batch 256, R1, GON, top-k),
graph vs XLA, one or 50 generator steps per compiled call, as steps/s and % of the matmul peak.
Also measured: the machine's matmul and conv peaks, time to the first step and peak memory of a
real ``gantrain`` run, and ``gantrain --help`` latency.

Folder table: ``dataset=folder``'s default step and the smaller one docs/guides/data.md suggests to start with.

Usage: ``python scripts/bench.py --data ../shared/data/mnist.npz [--steps 20] [--tables dcgan,toy,folder]
[--json bench.json]``
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from tensorflow.python.profiler import model_analyzer, option_builder  # noqa: E402

from gantrain import api  # noqa: E402
from gantrain.config import check_train  # noqa: E402
from gantrain.data import DATASETS  # noqa: E402
from gantrain.training.gan import build_gan  # noqa: E402
from gantrain.training.step import TrainStep, to_model_range  # noqa: E402

BATCH, N_CRITIC, GP_WEIGHT = 64, 5, 10.0


def graph_flops(fn: tf.types.experimental.GenericFunction, *args) -> float:
    """Floating-point operations of one call, counted by TensorFlow's profiler on the graph."""
    options = option_builder.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    return model_analyzer.profile(fn.get_concrete_function(*args).graph, options=options).total_float_ops


def seconds_per_call(fn, calls: int, warmup: int = 2) -> float:
    for _ in range(warmup):
        fn()
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    return (time.perf_counter() - start) / calls


def matmul_peak() -> float:
    a = tf.random.normal([2048, 2048])
    f = tf.function(lambda: tf.reduce_sum(tf.matmul(a, a)))
    return 2 * 2048**3 / seconds_per_call(f, 10) / 1e9


def conv_peak() -> float:
    """GFLOP/s of a forward+backward conv shaped like the critic's widest layer (5x5, 64 -> 128
    channels, 14x14 -> 7x7 maps, batch 192 = real, fake and interpolated images)."""
    x = tf.random.normal([192, 14, 14, 64])
    kernel = tf.Variable(tf.random.normal([5, 5, 64, 128]))

    @tf.function
    def f():
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = tf.reduce_sum(tf.nn.conv2d(x, kernel, 2, "SAME"))
        return tape.gradient(y, [x, kernel])

    return graph_flops(f) / seconds_per_call(f, 10) / 1e9


class TextbookWGAN(keras.Model):
    """WGAN-GP the way the keras-io example writes it: ``train_step`` overridden, run by ``fit``."""

    def __init__(self, generator, discriminator, z_dim):
        super().__init__()
        self.generator, self.discriminator, self.z_dim = generator, discriminator, z_dim

    def compile(self, d_optimizer, g_optimizer):
        super().compile()
        self.d_optimizer, self.g_optimizer = d_optimizer, g_optimizer

    def gradient_penalty(self, real, fake):
        eps = tf.random.uniform([tf.shape(real)[0], 1, 1, 1])
        interpolated = eps * real + (1 - eps) * fake
        with tf.GradientTape() as tape:
            tape.watch(interpolated)
            pred = self.discriminator(interpolated, training=True)
        grads = tape.gradient(pred, interpolated)
        norm = tf.sqrt(tf.reduce_sum(tf.square(grads), axis=[1, 2, 3]))
        return tf.reduce_mean((norm - 1.0) ** 2)

    def train_step(self, real):
        real = to_model_range(real)
        batch = tf.shape(real)[0]
        for _ in range(N_CRITIC):
            z = tf.random.normal([batch, self.z_dim])
            with tf.GradientTape() as tape:
                fake = self.generator(z, training=True)
                d_cost = tf.reduce_mean(self.discriminator(fake, training=True)) - tf.reduce_mean(
                    self.discriminator(real, training=True)
                )
                d_loss = d_cost + GP_WEIGHT * self.gradient_penalty(real, fake)
            grads = tape.gradient(d_loss, self.discriminator.trainable_variables)
            self.d_optimizer.apply(grads, self.discriminator.trainable_variables)
        z = tf.random.normal([batch, self.z_dim])
        with tf.GradientTape() as tape:
            g_loss = -tf.reduce_mean(self.discriminator(self.generator(z, training=True), training=True))
        grads = tape.gradient(g_loss, self.generator.trainable_variables)
        self.g_optimizer.apply(grads, self.generator.trainable_variables)
        return {"d_loss": d_loss, "g_loss": g_loss}


def adam():
    return keras.optimizers.Adam(1e-4, beta_1=0.0, beta_2=0.9)


def time_textbook(cfg, images: np.ndarray, steps: int) -> float:
    generator, discriminator = api.build_models(cfg)
    model = TextbookWGAN(generator, discriminator, cfg.model.z_dim)
    model.compile(d_optimizer=adam(), g_optimizer=adam())
    dataset = tf.data.Dataset.from_tensor_slices(images).shuffle(10_000).repeat().batch(BATCH, drop_remainder=True)
    model.fit(dataset, steps_per_epoch=3, epochs=1, verbose=0)  # warm-up and tracing
    start = time.perf_counter()
    model.fit(dataset, steps_per_epoch=steps, epochs=1, verbose=0)
    return (time.perf_counter() - start) / steps


def gantrain_step(cfg, images: np.ndarray) -> TrainStep:
    """gantrain's step, built as ``gantrain`` builds it (Adam 1e-4, betas 0 and 0.9); call ``.compiled``."""
    return TrainStep(build_gan(cfg, images.shape[1:]), tf.constant(images), check_train(cfg.train))


def step_flops(step: TrainStep) -> float:
    """One generator step's FLOPs, counted on one step's graph: the compiled call runs its steps in a
    loop, whose body the profiler does not count."""
    return graph_flops(tf.function(step.one_step))


def toy_rows(peak: float, steps: int) -> list[dict]:
    """The grid25 preset's step: graph vs XLA, 1 vs 50 generator steps per call."""
    rows = []
    for jit in (False, True):
        for per_call in (1, 50):
            cfg = api.compose(["experiment=grid25", f"train.jit_compile={jit}", f"train.steps_per_call={per_call}"])
            points = DATASETS.build(cfg.dataset).x
            train_step = gantrain_step(cfg, points)
            step, flops = train_step.compiled, step_flops(train_step)
            calls = max(2, steps * 10 // per_call)
            sec = seconds_per_call(lambda step=step, n=per_call: step(n), calls, warmup=1) / per_call
            rows.append(
                {
                    "implementation": f"grid25 {'XLA' if jit else 'graph'}, {per_call} step(s)/call",
                    "steps_per_sec": 1 / sec,
                    "gflop_per_step": flops / 1e9,
                    "pct_matmul_peak": 100 * flops / sec / 1e9 / peak,
                }
            )
    return rows


def folder_rows(steps: int) -> list[dict]:
    """``dataset=folder`` with its defaults (64x64 RGB, DCGAN 64 channels) and the smaller start
    the data guide suggests (32x32, 32 channels): seconds per generator step. Random pixels stand in for
    photos (the arithmetic does not depend on them)."""
    rows = []
    for resolution, channels in ((64, 64), (32, 32)):
        cfg = api.compose(
            [
                "dataset=folder",
                "dataset.path=unused",
                f"dataset.resolution={resolution}",
                f"model.g_channels={channels}",
                f"model.d_channels={channels}",
            ]
        )
        images = np.random.default_rng(0).integers(0, 256, (256, resolution, resolution, 3), dtype=np.uint8)
        sec = seconds_per_call(gantrain_step(cfg, images).compiled, max(2, steps // 2), warmup=1)
        rows.append({"implementation": f"folder {resolution}x{resolution}x3, {channels} channels", "sec_per_step": sec})
    return rows


def cli_figures(data: str) -> dict[str, float]:
    """``gantrain --help`` latency; time to the first step and peak RSS of a real run."""
    command = shutil.which("gantrain") or f"{sys.executable} -m gantrain.commands.train"
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        subprocess.run(
            [*command.split(), f"dataset.path={data}", "train.steps=1", f"hydra.run.dir={tmp}/run"],
            check=True,
            capture_output=True,
        )
        first_step = time.perf_counter() - start
    peak_rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20  # KiB -> GiB
    helps = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run([*command.split(), "--help"], check=True, capture_output=True)
        helps.append(time.perf_counter() - start)
    return {"time_to_first_step_s": first_step, "peak_rss_gib": peak_rss, "help_s": min(helps)}


def dcgan_rows(args, figures: dict) -> list[dict]:
    overrides = [
        "model=dcgan",
        "loss=wgan_gp",
        "dataset=mnist",
        f"dataset.path={args.data}",
        f"train.batch_size={BATCH}",
        f"train.n_critic={N_CRITIC}",
    ]
    cfg = api.compose(overrides)
    images = DATASETS.build(cfg.dataset).x
    train_step = gantrain_step(cfg, images)
    step, flops = train_step.compiled, step_flops(train_step)
    figures["gflop_per_step"] = flops / 1e9
    seconds = {"gantrain": seconds_per_call(step, args.steps)}
    # Same algorithm and FLOPs, bfloat16 arithmetic (train.precision=mixed_bfloat16), and XLA.
    for name, extra in (
        ("gantrain bfloat16", "train.precision=mixed_bfloat16"),
        ("gantrain XLA", "train.jit_compile=true"),
    ):
        seconds[name] = seconds_per_call(
            gantrain_step(api.compose([*overrides, extra]), images).compiled, max(2, args.steps // 5), warmup=1
        )
    seconds["keras textbook (fit)"] = time_textbook(cfg, images, args.steps)
    tf.config.run_functions_eagerly(True)
    eager = gantrain_step(cfg, images).compiled
    seconds["eager loop"] = seconds_per_call(eager, max(3, args.steps // 4), warmup=1)
    tf.config.run_functions_eagerly(False)
    rows = []
    print(f"\n{'implementation':<22}{'steps/s':>9}{'images/s':>10}{'GFLOP/s':>9}{'% conv peak':>12}{'vs textbook':>12}")
    for name, sec in seconds.items():
        row = {
            "implementation": name,
            "steps_per_sec": 1 / sec,
            "images_per_sec": BATCH * (N_CRITIC + 1) / sec,  # generated images per second
            "gflops": flops / sec / 1e9,
        }
        row["pct_conv_peak"] = 100 * row["gflops"] / figures["conv_peak_gflops"]
        row["vs_textbook"] = seconds["keras textbook (fit)"] / sec
        rows.append(row)
        print(
            f"{name:<22}{row['steps_per_sec']:>9.3f}{row['images_per_sec']:>10.1f}{row['gflops']:>9.1f}"
            f"{row['pct_conv_peak']:>11.0f}%{row['vs_textbook']:>11.2f}x"
        )
    print(f"{flops / 1e9:.1f} GFLOP per generator step (TensorFlow profiler count)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="../shared/data/mnist.npz", help="MNIST .npz or IDX directory")
    parser.add_argument("--steps", type=int, default=20, help="generator steps timed per implementation")
    parser.add_argument(
        "--tables", default="dcgan,toy,folder", help="which tables: dcgan, toy, folder (comma-separated)"
    )
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    figures = {
        "device": "GPU" if tf.config.list_logical_devices("GPU") else "CPU",
        "batch": BATCH,
        "n_critic": N_CRITIC,
    }
    figures.update(cli_figures(args.data))  # first, so the peak RSS is the training run's
    figures["matmul_peak_gflops"] = matmul_peak()
    figures["conv_peak_gflops"] = conv_peak()
    tables = args.tables.split(",")
    if "dcgan" in tables:
        figures["implementations"] = dcgan_rows(args, figures)
    if "toy" in tables:
        figures["toy"] = toy_rows(figures["matmul_peak_gflops"], args.steps)
        base = figures["toy"][0]["steps_per_sec"]
        print(
            f"\n{'grid25 preset step':<34}{'steps/s':>9}{'GFLOP/step':>11}{'% matmul peak':>15}{'vs graph, 1/call':>18}"
        )
        for row in figures["toy"]:
            print(
                f"{row['implementation']:<34}{row['steps_per_sec']:>9.1f}{row['gflop_per_step']:>11.2f}"
                f"{row['pct_matmul_peak']:>14.0f}%{row['steps_per_sec'] / base:>17.2f}x"
            )
    if "folder" in tables:
        figures["folder"] = folder_rows(args.steps)
        print(f"\n{'dataset=folder, DCGAN + WGAN-GP, batch 64':<44}{'s/step':>8}")
        for row in figures["folder"]:
            print(f"{row['implementation']:<44}{row['sec_per_step']:>8.2f}")
    print(
        f"\npeaks: matmul {figures['matmul_peak_gflops']:.0f} GFLOP/s, "
        f"conv fwd+bwd {figures['conv_peak_gflops']:.0f} GFLOP/s"
    )
    print(
        f"gantrain --help {figures['help_s']:.2f} s; first step of a run {figures['time_to_first_step_s']:.1f} s; "
        f"peak RSS {figures['peak_rss_gib']:.2f} GiB ({figures['device']})"
    )
    print(json.dumps(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")


if __name__ == "__main__":
    main()
