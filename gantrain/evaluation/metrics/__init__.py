"""Sample-quality metrics.

- :func:`mode_metrics`: mode coverage of 2-D mixtures (PacGAN/VEEGAN);
- :func:`frechet_distance`, :func:`kernel_inception_distance`, :func:`inception_score`: on
  features or class probabilities from any extractor;
- :func:`sample_quality`: precision, recall, density and coverage of samples against real
  examples, on features or points (:mod:`gantrain.evaluation.metrics.prdc`).
"""

from gantrain.evaluation.metrics.distances import (
    frechet_distance,
    gaussian_statistics,
    inception_score,
    kernel_inception_distance,
)
from gantrain.evaluation.metrics.modes import kl_to_uniform, mode_metrics
from gantrain.evaluation.metrics.prdc import sample_quality

__all__ = [
    "frechet_distance",
    "gaussian_statistics",
    "inception_score",
    "kernel_inception_distance",
    "kl_to_uniform",
    "mode_metrics",
    "sample_quality",
]
