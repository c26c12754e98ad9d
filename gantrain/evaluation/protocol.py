"""The protocol card: how a result was measured, kept with the numbers so that two results can be
compared, or told apart, without the commands that made them.

Every evaluation carries one, under ``protocol``: ``gantrain-eval``'s output and ``eval.json`` (and
the samples it exports), the rows of evaluations during training in ``metrics.jsonl``, and a
sweep's ``summary.csv`` (as one JSON text per row). Its fields:

- ``extractor``: what turned samples into features: ``name`` (``classifier``, ``inception``,
  ``inception2015``; ``points`` for 2-D toys, whose points are their own features; ``none``:
  pixel statistics only), ``weights`` (a SHA-256 fingerprint of the extractor's weights, the one
  its cached real statistics are named by) and ``input`` (how samples are resized for it);
- ``real``: the real data compared with: ``dataset``, ``split``, ``examples`` (how many) and
  ``data_sha256`` (of the decoded images and labels, as the statistics cache records it);
- ``samples`` (how many were generated) and ``noise_seed`` (the seed of their noise);
- ``sampler``: ``name`` (``none``, ``drs``, ``mh``, ``dot``) and the settings that sampler reads;
- ``truncation`` (psi, or null), ``step`` (the checkpoint's or the training step) and
  ``generator``: ``ema`` (the moving average of G) or ``raw``.

Usage: ``card = protocol_card(cfg.dataset, dataset, plan, options, num_samples=2500, seed=0, ...)``.
"""

from __future__ import annotations

from typing import Any

from omegaconf import DictConfig, OmegaConf

from gantrain.evaluation.options import MetricOptions
from gantrain.evaluation.plan import Plan, kind_of

INPUTS = {
    "classifier": "28x28 pixels as drawn, no resizing",
    "inception": "greyscale tiled to RGB, bilinear resize to 299x299 (tf.image.resize, no antialiasing), "
    "scaled to [-1, 1]",
    "inception2015": "uint8-range pixels; the 2015 graph resizes them to 299x299 itself (bilinear)",
    "inception_random": "as inception (untrained weights: tests only)",
}
DRIVEN = ("driven_generator",)
SAMPLER_KEYS = {
    "none": (),
    "drs": ("drs_percentile", *DRIVEN),
    "mh": ("mh_steps", *DRIVEN),
    "dot": ("dot_steps", "dot_lr", "dot_k", "dot_k_fraction", *DRIVEN),
}


def protocol_card(
    node: DictConfig,
    dataset,
    plan: Plan,
    measuring: MetricOptions,
    *,
    num_samples: int,
    seed: int,
    step: int,
    ema: bool,
    truncation: float | None = None,
) -> dict[str, Any]:
    """The card of an evaluation of ``num_samples`` samples (noise seed ``seed``) of a run on the
    dataset ``node`` (built: ``dataset``) by ``plan`` and the options ``measuring`` (its sampler and
    extractor weights), at ``step``, from the moving average of G if ``ema``, with ``truncation``."""
    extractor, real = _measured_with(node, dataset, plan, num_samples, measuring.weights, measuring.inception_graph)
    sampler = measuring.sampling
    return {
        "extractor": extractor,
        "real": real,
        "samples": num_samples,
        "noise_seed": seed,
        "sampler": {"name": sampler, **{k: getattr(measuring, k) for k in SAMPLER_KEYS[sampler]}},
        "truncation": truncation,
        "step": step,
        "generator": "ema" if ema else "raw",
    }


def _measured_with(node: DictConfig, dataset, plan: Plan, num_samples: int, weights, inception_graph):
    """(the extractor's part of the card, the real data's part)."""
    split = node.get("split", "train")
    if dataset.centers is not None:  # 2-D toys: the first as many real points as samples
        points = {"name": "points", "weights": None, "input": "the 2-D points themselves"}
        return points, {"dataset": node.name, "split": split, "examples": min(num_samples, dataset.size)}
    if plan.extractor == "none":
        none = {"name": "none", "weights": None, "input": "pixel statistics, no features"}
        return none, {"dataset": node.name, "split": split, "examples": min(num_samples, dataset.size)}
    from gantrain.evaluation.features import extractor_identity
    from gantrain.evaluation.features.stats_cache import data_digest

    if kind_of(node.name) == "stacked":  # each channel read by the MNIST classifier; no real statistics
        mnist = OmegaConf.create({"name": "mnist", "path": node.get("path"), "split": "train"})
        key, fingerprint = extractor_identity(mnist, "classifier")
        extractor = {"name": key, "weights": fingerprint, "input": "each of the 3 channels as a 28x28 digit"}
        return extractor, {"dataset": node.name, "split": split, "examples": None, "compared_with": "1000 triples"}
    key, fingerprint = extractor_identity(node, plan.extractor, weights, inception_graph)
    digest, examples = data_digest(node)
    extractor = {"name": key, "weights": fingerprint, "input": INPUTS[key]}
    return extractor, {"dataset": node.name, "split": split, "examples": examples, "data_sha256": digest}
