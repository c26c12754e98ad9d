"""Measuring a trained run: loading it, drawing samples (plain, or chosen or moved by its D:
:mod:`.rejection`, :mod:`.transport`), which metrics a dataset gets (:mod:`.plan`), the feature
extractors (:mod:`.features`) and the metrics themselves (:mod:`.metrics`)."""
