"""Which metrics a run's samples get, and what each means: the one table that the check before a
run, the evaluation during training and ``gantrain-eval`` all read.

Kinds of data, as each dataset's loader declares it (``gantrain.data.DatasetFacts.kind``):
``mixture`` (ring8, grid25: 2-D points, PacGAN's mode metrics and precision, recall, density and
coverage of the points), ``stacked`` (stacked MNIST: 1000 digit triples read by the MNIST
classifier), ``digits`` (MNIST, Fashion-MNIST: gantrain's classifier exists for them), ``images``
(everything else). Extractors (``eval.features``,
``features=``): ``auto``, ``classifier``, ``inception``, ``none`` (pixel statistics only).

Usage: ``plan = evaluation_plan("mnist", "auto")`` -> ``Plan(extractor="classifier", metrics=(...))``;
a pair that cannot be measured is a ConfigError naming ``key``.
"""

from __future__ import annotations

from dataclasses import dataclass

from gantrain.errors import ConfigError

EXTRACTORS = ("auto", "classifier", "inception", "none")

# name: (what it means, higher is better)
METRICS: dict[str, tuple[str, bool]] = {
    "modes": ("modes with at least one sample (mixture components within 3 std, or stacked-MNIST digit triples)", True),
    "hq": ("high quality: the share of samples within 3 std of a mode centre", True),
    "rkl": ("reverse KL: KL of the high-quality samples' mode histogram to uniform (0: even)", False),
    "mode_kl": ("KL of the digit-triple histogram to uniform over the 1000 (0: even)", False),
    "fid": ("Frechet distance between the feature statistics of samples and training data", False),
    "kid": ("kernel distance (unbiased MMD^2) between sample and training features", False),
    "kid_std": ("its standard deviation over subsets", False),
    "is": ("Inception Score: exp E[KL(p(y|x) || p(y))], confident and varied predictions", True),
    "is_std": ("its standard deviation over splits", False),
    "class_accuracy": (
        "conditional runs: the share of samples the classifier assigns to the class they were drawn for",
        True,
    ),
    "intra_fid": (
        "conditional runs: the mean over classes of the FID between each class's samples and its real images",
        False,
    ),
    "precision": (
        "the share of samples inside the 3-nearest-neighbour ball of some real example (Kynkaanniemi et al. 2019)",
        True,
    ),
    "recall": ("the share of real examples inside the 3-nearest-neighbour ball of some sample", True),
    "density": (
        "real 5-nearest-neighbour balls around a sample, on average, over 5 (1: as the data; Naeem et al. 2020)",
        True,
    ),
    "coverage": ("the share of real examples whose 5-nearest-neighbour ball holds a sample", True),
    "classes_hit": ("classes the classifier predicts for at least one sample", True),
    "class_kl": ("KL of the predicted-class histogram to uniform (0: every class equally often)", False),
    "acceptance": ("discriminator-driven sampling: the share of G's proposals accepted", True),
    "d_calls_per_sample": (
        "discriminator-driven sampling: D's evaluations per sample kept (calibration included)",
        False,
    ),
    "pixel_mean": ("mean pixel value (0-255) of the samples", True),
    "pixel_std": ("standard deviation of the samples' pixel values", True),
    "real_pixel_mean": ("the same for as many training images", True),
    "real_pixel_std": ("the same for as many training images", True),
}

MODES = ("modes", "hq", "rkl")
TRIPLES = ("modes", "mode_kl")
DISTANCES = ("fid", "kid", "kid_std", "is", "is_std")
MANIFOLD = ("precision", "recall", "density", "coverage")  # on the same features as fid (points for mixtures)
CLASSES = ("classes_hit", "class_kl")
CONDITIONAL = ("class_accuracy", "intra_fid")
PIXELS = ("pixel_mean", "pixel_std", "real_pixel_mean", "real_pixel_std")


@dataclass(frozen=True)
class Plan:
    """How samples are measured: with which extractor, giving which metrics."""

    extractor: str  # classifier, inception or none
    metrics: tuple[str, ...]


def kind_of(dataset: str) -> str:
    """The kind the dataset named ``dataset`` declares: images, digits, mixture or stacked."""
    from gantrain.data import DATASETS  # the loaders, only when a name is asked about

    return DATASETS.facts(dataset).kind


def evaluation_plan(
    dataset: str, features: str = "auto", key: str = "eval.features", conditional: bool = False
) -> Plan:
    """The extractor ``features`` means for ``dataset`` and the metrics it gives (a ``conditional``
    run's samples also get the classifier's conditional metrics)."""
    if features not in EXTRACTORS:
        raise ConfigError(key, f"unknown extractor '{features}'; known: {', '.join(EXTRACTORS)}")
    kind = kind_of(dataset)
    if kind == "mixture":
        return Plan("none", MODES + MANIFOLD)  # points need no features
    if features == "none":
        return Plan("none", PIXELS)
    if kind == "stacked":
        if features == "inception":
            raise ConfigError(
                key,
                "stacked_mnist is measured by its digit triples with the MNIST classifier: "
                "use auto, classifier or none",
            )
        return Plan("classifier", TRIPLES)
    if features == "classifier" or (features == "auto" and kind == "digits"):
        if kind != "digits":
            raise ConfigError(
                key, f"the classifier is trained on mnist or fashion_mnist, not {dataset}; use inception (or auto)"
            )
        return Plan("classifier", DISTANCES + MANIFOLD + CLASSES + (CONDITIONAL if conditional else ()))
    return Plan("inception", DISTANCES + MANIFOLD)


def check_sample_count(plan: Plan, num_samples: int, classes: int, key: str) -> None:
    """FID and KID compare the samples' covariance, which two samples at least define, and
    intra-FID each class's: a conditional evaluation needs two per class (drawn for every class in
    turn). ``classes``: the dataset's; a plan has intra-FID only for a conditional run. (Precision,
    recall, density and coverage are NaN below six, not an error.)"""
    if "fid" in plan.metrics and num_samples < 2:
        raise ConfigError(key, f"FID and KID need at least 2 samples, got {num_samples}")
    if "intra_fid" in plan.metrics and num_samples < 2 * classes:
        raise ConfigError(
            key,
            f"intra-FID needs at least 2 samples per class: {2 * classes} or more for {classes} classes, "
            f"got {num_samples}",
        )


def default_num_samples(dataset: str) -> int:
    """Samples per evaluation unless given: 26,000 for stacked MNIST, as VEEGAN and PacGAN count its
    1000 modes (with 2,500 even a perfect generator shows only ~920 of them), else 2,500."""
    return 26_000 if kind_of(dataset) == "stacked" else 2_500


def higher_is_better(metric: str) -> bool:
    return METRICS.get(metric, ("", False))[1]


def legend(metrics) -> str:
    """One line per metric in ``metrics``: its name and meaning, with which way is better."""
    lines = []
    for name in metrics:
        if name in METRICS:
            meaning, higher = METRICS[name]
            better = (
                ""
                if name.endswith("_std") or name.startswith(("pixel", "real_pixel"))
                else (" (higher is better)" if higher else " (lower is better)")
            )
            lines.append(f"  {name}: {meaning}{better}")
    return "\n".join(lines)
