"""Samples of a generator for evaluation: from the fixed evaluation noise, or chosen (DRS, MH) or
moved (DOT) by the run's discriminator, and the checks that D can be asked to.

Usage: ``samples, cost = run_samples(cfg, generator, discriminator, path, options, 2500, seed, 500, labels)``.
"""

from __future__ import annotations

import numpy as np

from gantrain.errors import ConfigError
from gantrain.evaluation.options import SamplingOptions
from gantrain.evaluation.rejection import CALIBRATED
from gantrain.evaluation.saved_run import restore_discriminator


def run_samples(
    cfg,
    generator,
    discriminator,
    path: str,
    options: SamplingOptions,
    num_samples: int,
    seed: int,
    batch_size: int,
    labels: np.ndarray | None,
    truncation: float | None = None,
) -> tuple[np.ndarray, dict]:
    """(samples of the run's G from the noise of ``seed``, truncated at ``truncation``, for ``labels``;
    or, with ``options.sampling``, chosen by its D restored from ``path``, and what choosing cost)."""
    if options.sampling == "none":
        return draw(generator, num_samples, seed, batch_size, labels, truncation), {}
    restore_discriminator(discriminator, path)
    held_out = held_out_examples(cfg.dataset) if options.sampling in CALIBRATED else None
    return driven_draw(generator, discriminator, held_out, options, num_samples, seed, batch_size)


def evaluation_labels(num_samples: int, classes: int) -> np.ndarray | None:
    """The classes a conditional run's evaluation samples are drawn for: every class in turn, so
    each gets an equal share (None: unconditional)."""
    return np.arange(num_samples, dtype=np.int32) % classes if classes else None


def class_labels(classes: list[int] | None, num_samples: int) -> np.ndarray | None:
    """The label of each sample: the requested classes in turn, as gantrain-eval draws every class
    in turn (None: unconditional)."""
    if classes is None:
        return None
    return np.asarray(classes, np.int32)[evaluation_labels(num_samples, len(classes))]


def chosen_classes(classes: list[int] | None, num_classes: int) -> list[int] | None:
    """The classes to draw for a conditional run (``num_classes`` > 0): ``classes``, checked, or all."""
    if not num_classes:
        if classes is not None:
            raise ConfigError(
                "classes", "this run is unconditional (model.conditional=false): it has no classes to choose"
            )
        return None
    if classes is None:
        return list(range(num_classes))
    if not classes:
        raise ConfigError("classes", "needs at least one class")
    outside = [k for k in classes if not 0 <= k < num_classes]
    if outside:
        raise ConfigError("classes", f"{outside[0]} is not a class of this run (0 to {num_classes - 1})")
    return list(dict.fromkeys(classes))


def draw(
    generator,
    num_samples: int,
    seed: int,
    batch_size: int = 500,
    labels: np.ndarray | None = None,
    truncation: float | None = None,
) -> np.ndarray:
    """``num_samples`` samples from the evaluation noise of a run with ``seed`` (the same noise in
    training-time evaluations and in ``gantrain-eval``, so their numbers agree), truncated at
    ``truncation`` (None: as drawn), drawn for ``labels`` (N,) when G is conditional."""
    from gantrain.models.conditioning import generate, noise_size

    noise = evaluation_noise(num_samples, noise_size(generator), seed, truncation)
    return np.concatenate(
        [
            generate(
                generator, noise[i : i + batch_size], None if labels is None else labels[i : i + batch_size]
            ).numpy()
            for i in range(0, num_samples, batch_size)
        ]
    )


def evaluation_noise(num_samples: int, size: int, seed: int, truncation: float | None = None):
    """The noise evaluations draw G's samples from: the same for every evaluation of a run; with
    ``truncation``, its entries beyond that redrawn from seeds folded from its own (the same
    truncated noise for the same seed)."""
    import tensorflow as tf

    from gantrain.evaluation.truncation import truncated

    noise = tf.random.stateless_normal([num_samples, size], seed=[seed, 2])
    if truncation is None:
        return noise

    def redraw(round_: int) -> np.ndarray:
        folded = tf.random.experimental.stateless_fold_in([seed, 2], round_)
        return tf.random.stateless_normal([num_samples, size], seed=folded).numpy()

    return tf.constant(truncated(noise.numpy(), truncation, redraw))


def check_driven_sampling(cfg, key: str) -> None:
    """Discriminator-driven sampling needs D to judge single, unlabelled, clean samples."""
    check_single_sample_critic(cfg.train.get("pack", 1), key)
    if cfg.model.get("conditional"):
        raise ConfigError(key, "discriminator-driven sampling is for unconditional runs; this run is conditional")
    if cfg.train.get("augment"):
        # DiffAugment and ADA show D augmented reals and augmented fakes alike (every image at
        # augment_p=1, a share p of them under ADA): what D learnt is the density ratio of augmented
        # images, and its logit on a clean sample is off that distribution. Refused, not reported.
        raise ConfigError(
            key,
            f"this run's D was trained on augmented images (train.augment=[{','.join(cfg.train.augment)}]) "
            "and does not judge clean samples; discriminator-driven sampling needs a run trained "
            "without train.augment",
        )


def check_single_sample_critic(pack: int, key: str) -> None:
    if pack > 1:
        raise ConfigError(
            key,
            f"this run's D judges packs of {pack} samples (train.pack), not single samples; "
            "discriminator-driven sampling needs train.pack=1",
        )


def held_out_examples(node) -> np.ndarray:
    """Real examples training did not see, in the model's range, to calibrate D with: the other
    split (MNIST, Fashion-MNIST, CIFAR-10, stacked MNIST), fresh points of a toy mixture; an image
    folder has no other split, so its own images (what each loader declares, ``held_out``)."""
    from gantrain.data import held_out
    from gantrain.evaluation.rejection import CALIBRATION_SAMPLES

    examples = held_out(node).head(CALIBRATION_SAMPLES)
    return examples.astype(np.float32) / 127.5 - 1.0 if examples.dtype == np.uint8 else examples.astype(np.float32)


def driven_draw(
    generator,
    discriminator,
    held_out: np.ndarray | None,
    opts: SamplingOptions,
    num_samples: int,
    seed: int,
    batch_size: int = 500,
) -> tuple[np.ndarray, dict]:
    """``num_samples`` samples chosen (``dot``: moved) by ``discriminator`` (``opts.sampling``), with
    what choosing cost: ``acceptance`` and ``d_calls_per_sample``; ``held_out``: real examples to calibrate
    D with (DRS, MH; None for DOT, which needs none)."""
    from gantrain.evaluation.rejection import drive

    z_dim = generator.input_shape[-1]  # an unconditional G (check_driven_sampling)
    if opts.sampling == "dot":
        from gantrain.evaluation.transport import transport

        # DOT moves the very samples plain evaluation draws.
        noise = evaluation_noise(num_samples, z_dim, seed).numpy()
        moved = transport(
            generator,
            discriminator,
            noise,
            seed,
            opts.dot_steps,
            opts.dot_lr,
            k=opts.dot_k,
            k_fraction=opts.dot_k_fraction,
            batch=batch_size,
        )
        return moved.x, {"acceptance": moved.acceptance, "d_calls_per_sample": moved.calls_per_sample}

    def propose(k: int, rng: np.random.Generator) -> np.ndarray:
        z = rng.standard_normal((k, z_dim), dtype=np.float32)
        return np.concatenate(
            [generator(z[i : i + batch_size], training=False).numpy() for i in range(0, k, batch_size)]
        )

    def logits(x: np.ndarray) -> np.ndarray:
        return discriminator(x, training=False).numpy()

    assert held_out is not None  # DRS and MH calibrate D on it (CALIBRATED)
    sampled = drive(
        propose, logits, held_out, opts.sampling, num_samples, seed, opts.drs_percentile, opts.mh_steps, batch_size
    )
    return sampled.x, {"acceptance": sampled.acceptance, "d_calls_per_sample": sampled.calls_per_sample}
