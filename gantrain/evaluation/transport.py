"""Discriminator optimal transport (DOT, Tanaka 2019): D moves G's samples instead of vetoing them.

DRS and MH keep or drop G's samples, so they can only reweight what G draws: a sample on the trail
between two modes is dropped or kept, never mended. DOT reads D's logit ``d`` as the potential of
an optimal transport from G's distribution towards the data's and moves each sample uphill on it,
tethered to where it started. In latent space, as the paper does for its image models, the noise
``z_y`` of each sample moves to

    z* = argmin_z  ||z - z_y|| - d(G(z)) / k_eff

so the samples stay on G's manifold. ``k_eff`` is the effective Lipschitz constant of ``d ∘ G``,
the largest ``|d(G(z1)) - d(G(z2))| / ||z1 - z2||`` over 100 pairs of fresh noise (the reference
script's ``eff_k``, which takes one such set), averaged over 10 such sets (as the reference's 2-D
notebook, ``demo_2d.ipynb``, averages its constant), or a number given instead (the reference's
``--k``; its ``--k 1`` pulls harder wherever ``k_eff`` is above 1), or a fraction of ``k_eff``:
the rule that carries from one run to another, since a fixed number means a different pull for
each D's scale (docs/benchmarks.md, "Fresh seeds: D-driven sampling and DOT's constant"). The
minimum is found as the paper does, by Adam with β = (0, 0.9) from ``z_y``; the reference's
``0.001`` inside the norm keeps its gradient defined at the start.

A calibrated logit (an affine map with a positive scale) moves ``d`` and ``k_eff`` by the same
factor, so DOT needs no held-out data (a fixed ``k`` is on the scale of D's own logit). Since every
sample is moved, not drawn again, the latent distribution G sees is no longer Gaussian: this is how
DOT gets past the bound a continuous G of a Gaussian latent puts on the share of samples between
modes (docs/benchmarks.md, "Why the trail").

Usage::

    moved = transport(generator, discriminator, noise, seed=0, steps=100, lr=0.01, k=None, k_fraction=1.0)
    moved.x, moved.calls_per_sample
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from gantrain.evaluation.rejection import Sampled

PAIRS, TRIALS = 100, 10  # k_eff: mean over TRIALS (the 2-D notebook's averaging) of a max over PAIRS (eff_k's)
BETA_2, EPSILON = 0.9, 1e-8  # the paper's Adam (β1 = 0) and Chainer's default epsilon
TETHER_OFFSET = 0.001  # inside the norm, as in the reference code: a defined gradient at z = z_y


def transport(
    generator,
    discriminator,
    noise: np.ndarray,
    seed: int,
    steps: int = 100,
    lr: float = 0.01,
    k: float | None = None,
    k_fraction: float = 1.0,
    batch: int = 500,
) -> Sampled:
    """G's samples of ``noise`` (n, z_dim), each moved by DOT with ``k`` (None: ``k_fraction`` times
    ``k_eff``, whose pairs come from NumPy's generator seeded with ``seed``)."""
    estimated = k is None
    if estimated:
        k = k_fraction * effective_lipschitz(generator, discriminator, np.random.default_rng([seed, 4]))
    k = tf.constant(k, tf.float32)
    lr = tf.constant(lr, tf.float32)
    moved = np.concatenate(
        [
            move(generator, discriminator, noise[i : i + batch], k, steps, lr).numpy()
            for i in range(0, len(noise), batch)
        ]
    )
    x = np.concatenate([generator(moved[i : i + batch], training=False).numpy() for i in range(0, len(moved), batch)])
    # Every sample is kept; D is called once per update (its gradient) and 2 * PAIRS * TRIALS times for k_eff.
    shared = 2 * PAIRS * TRIALS / len(noise) if estimated else 0.0
    return Sampled(x, acceptance=1.0, calls_per_sample=steps + shared)


def effective_lipschitz(generator, discriminator, rng: np.random.Generator) -> float:
    """``k_eff`` of ``d ∘ G`` in latent space: the reference's ``eff_k``, averaged over TRIALS sets."""
    z_dim = generator.input_shape[-1]
    estimates = []
    for _ in range(TRIALS):
        z1, z2 = (rng.standard_normal((PAIRS, z_dim), dtype=np.float32) for _ in range(2))
        d1, d2 = (discriminator(generator(z, training=False), training=False).numpy().reshape(-1) for z in (z1, z2))
        estimates.append(np.max(np.abs(d2 - d1) / np.linalg.norm(z2 - z1, axis=1)))
    return float(np.mean(estimates))


@tf.function(reduce_retracing=True)
def move(generator, discriminator, z_y, k, steps: int, lr) -> tf.Tensor:
    """``steps`` Adam updates (β1 = 0) of each row of ``z_y`` on ``||z - z_y|| - d(G(z)) / k``.

    Written out rather than a Keras optimizer's: a Keras optimizer keeps its moments in variables
    built for one shape, and each batch of samples is a fresh problem with fresh moments."""
    z_y = tf.convert_to_tensor(z_y, tf.float32)
    z, v = tf.identity(z_y), tf.zeros_like(z_y)
    for t in tf.range(1, steps + 1):
        with tf.GradientTape() as tape:
            tape.watch(z)
            logit = tf.reshape(discriminator(generator(z, training=False), training=False), [-1])
            # The rows are independent problems: the gradient of the sum is each row's own gradient.
            cost = tf.reduce_sum(tf.norm(z - z_y + TETHER_OFFSET, axis=1) - tf.cast(logit, tf.float32) / k)
        gradient = tape.gradient(cost, z)
        v = BETA_2 * v + (1 - BETA_2) * tf.square(gradient)
        v_hat = v / (1 - tf.pow(BETA_2, tf.cast(t, tf.float32)))
        z = z - lr * gradient / (tf.sqrt(v_hat) + EPSILON)
    return z
