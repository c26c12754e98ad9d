"""Discriminator-driven sampling: D, trained to tell data from G's samples, vetoes samples after training.

At the optimum D's logit is ``log p_data(x) / p_G(x)``, so the density ratio that would turn G's
distribution into the data's is known up to D's errors. Two samplers use it:

- ``drs``: discriminator rejection sampling (Azadi et al. 2019). A sample is kept with probability
  ``sigmoid(F(x) - gamma)``, ``F(x) = d(x) - d_max - log(1 - exp(d(x) - d_max - eps))``, where
  ``d_max`` is the largest logit seen (first over a burn-in of proposals, then updated). With
  ``gamma = 0`` that probability is ``exp(d(x) - d_max)``: exact rejection sampling of the data's
  distribution. ``percentile`` sets ``gamma`` for each batch to that percentile of F, as the paper
  does in practice: the share kept then hardly depends on how far ``d_max`` lies above the batch's
  logits (an outlying ``d_max`` no longer starves exact DRS), but it is not larger in general — at
  the 95th percentile about 8 % of a 1-D toy's proposals are kept, where exact DRS keeps 60 % — and
  the samples shift towards the likeliest ones.
- ``mh``: Metropolis–Hastings GAN (Turner et al. 2019). An independence chain with G's samples as
  proposals: from state ``x`` the proposal ``x'`` is accepted with probability
  ``min(1, r(x') / r(x))``, ``r = exp(d)``; after ``steps`` proposals the state is the sample.
  Chains start at a held-out real example, so they need no burn-in; a chain that accepted nothing
  starts again from a generated sample, as the paper does.

Both calibrate D first, as the papers do: its logits are refitted on held-out real examples and
fresh samples (Platt scaling: logistic regression of real/fake on the logit, :func:`calibrate`),
since a D trained with its own regularisers and schedules is rarely a calibrated probability.

Every draw comes from NumPy's generator seeded with the run's seed: the same samples each time,
and the training stream is untouched.

Usage::

    sampled = drive(propose, logits, held_out, "drs", n=2500, seed=0)
    sampled.x, sampled.acceptance, sampled.calls_per_sample
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gantrain.errors import ConfigError

SAMPLERS = ("none", "drs", "mh", "dot")  # dot moves samples instead of choosing them: gantrain.evaluation.transport
CALIBRATED = ("drs", "mh")  # the samplers that calibrate D on held-out real examples (dot needs none)
BURN_IN = 10_000  # proposals whose largest logit starts d_max (the DRS paper's burn-in)
MAX_PROPOSALS_PER_SAMPLE = 1_000  # beyond this DRS stops rather than run for hours
CALIBRATION_SAMPLES = 10_000  # held-out real examples and as many samples for the calibration


@dataclass(frozen=True)
class Calibration:
    """Calibrated logit = ``scale * logit + shift``."""

    scale: float = 1.0
    shift: float = 0.0

    def __call__(self, logits: np.ndarray) -> np.ndarray:
        return self.scale * logits + self.shift


def calibrate(real: np.ndarray, fake: np.ndarray, iterations: int = 100) -> Calibration:
    """Platt scaling: the logistic regression of "real" on D's logit over the held-out ``real`` and
    generated ``fake`` logits (as many of each), by Newton's method on the mean log-likelihood."""
    logit = np.concatenate([real, fake]).astype(np.float64)
    label = np.concatenate([np.ones(len(real)), np.zeros(len(fake))])
    features = np.stack([logit, np.ones_like(logit)], axis=1)
    w = np.array([1.0, 0.0])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(features @ w, -500, 500)))
        gradient = features.T @ (label - p)
        hessian = features.T @ (features * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, gradient)
        w += step
        if np.abs(step).max() < 1e-10:
            break
    return Calibration(float(w[0]), float(w[1]))


@dataclass
class Sampled:
    x: np.ndarray  # the samples kept, (n, ...)
    acceptance: float  # proposals accepted / proposals made (DRS), or moves accepted (MH)
    calls_per_sample: float  # D's evaluations per sample returned, calibration and burn-in included


def drive(
    propose: Callable[[int, np.random.Generator], np.ndarray],
    logits: Callable[[np.ndarray], np.ndarray],
    held_out: np.ndarray,
    method: str,
    n: int,
    seed: int,
    percentile: float | None = 95.0,
    steps: int = 100,
    batch: int = 500,
) -> Sampled:
    """``n`` samples of G chosen by D with ``method`` (drs or mh). ``propose(k, rng)``: k samples
    of G; ``logits(x)``: D's logits (k,); ``held_out``: real examples D was not trained on."""
    rng = np.random.default_rng([seed, 3])
    real = held_out[:CALIBRATION_SAMPLES]
    fake = propose(len(real), rng)
    calibration = calibrate(batched(logits, real, batch), batched(logits, fake, batch))
    score = lambda x: calibration(batched(logits, x, batch))  # noqa: E731
    calls = 2 * len(real)
    if method == "drs":
        x, acceptance, more = rejection_sample(propose, score, n, rng, percentile, batch)
    elif method == "mh":
        x, acceptance, more = metropolis_hastings(propose, score, real, n, rng, steps)
    else:
        raise ValueError(f"unknown sampler {method}; known: drs, mh")
    return Sampled(x, acceptance, (calls + more) / n)


def batched(fn: Callable[[np.ndarray], np.ndarray], x: np.ndarray, batch: int) -> np.ndarray:
    return np.concatenate([np.asarray(fn(x[i : i + batch])).reshape(-1) for i in range(0, len(x), batch)])


def rejection_sample(
    propose,
    score,
    n: int,
    rng: np.random.Generator,
    percentile: float | None = 95.0,
    batch: int = 500,
    eps: float = 1e-6,
) -> tuple[np.ndarray, float, int]:
    """(samples, acceptance rate, D calls) of DRS; ``score``: calibrated logits."""
    d_max = float(score(propose(BURN_IN, rng)).max())
    calls, proposed = BURN_IN, 0
    kept: list[np.ndarray] = []
    while sum(len(k) for k in kept) < n:
        if proposed >= MAX_PROPOSALS_PER_SAMPLE * n:
            raise ConfigError(
                "drs_percentile",
                f"rejection sampling kept {sum(len(k) for k in kept)} of {proposed} "
                f"proposals, too few for {n} samples; a percentile (e.g. 95) keeps more",
            )
        x = propose(batch, rng)
        d = score(x)
        calls += batch
        proposed += batch
        d_max = max(d_max, float(d.max()))
        # log(1 - exp(d - d_max - eps)) without cancellation; d - d_max - eps < 0.
        f = d - d_max - np.log(-np.expm1(d - d_max - eps))
        gamma = float(np.percentile(f, percentile)) if percentile is not None else 0.0
        with np.errstate(over="ignore"):  # exp overflows to inf far below gamma: probability 0, as it should be
            accept = rng.random(batch) < 1.0 / (1.0 + np.exp(-(f - gamma)))
        kept.append(x[accept])
    kept_count = sum(len(k) for k in kept)
    return np.concatenate(kept)[:n], kept_count / proposed, calls


def metropolis_hastings(
    propose, score, real: np.ndarray, n: int, rng: np.random.Generator, steps: int
) -> tuple[np.ndarray, float, int]:
    """(samples, share of proposals accepted, D calls) of ``n`` independence chains of ``steps``
    proposals each, started at held-out real examples; chains that never moved run again from a
    generated sample."""
    start = real[rng.integers(0, len(real), n)]
    state, moved, accepted, calls = chains(propose, score, start, score(start), rng, steps)
    calls += n
    stuck = np.flatnonzero(~moved)
    if len(stuck):
        fresh = propose(len(stuck), rng)
        state[stuck], _, again, more = chains(propose, score, fresh, score(fresh), rng, steps)
        accepted += again
        calls += more + len(stuck)
    return state, accepted / ((n + len(stuck)) * steps), calls


def chains(
    propose, score, state: np.ndarray, d: np.ndarray, rng: np.random.Generator, steps: int
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """Run one chain per row of ``state`` (logits ``d``) for ``steps`` proposals: (final states,
    whether each moved, proposals accepted, D calls)."""
    state, d = state.copy(), d.copy()
    moved = np.zeros(len(state), bool)
    accepted = 0
    for _ in range(steps):
        x = propose(len(state), rng)
        d_new = score(x)
        # min(1, r(x') / r(x)) with r = exp(d): compare in logs.
        accept = np.log(rng.random(len(state))) < d_new - d
        state[accept], d[accept] = x[accept], d_new[accept]
        moved |= accept
        accepted += int(accept.sum())
    return state, moved, accepted, steps * len(state)
