"""Sample-quality metrics. ``mode_metrics``: mode coverage of 2-D mixtures (PacGAN/VEEGAN)."""

from gantrain.metrics.modes import mode_metrics

__all__ = ["mode_metrics"]
