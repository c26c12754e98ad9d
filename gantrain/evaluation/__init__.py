"""Measuring a trained run: its keys (:mod:`.options`), loading it (:mod:`.saved_run`), drawing
samples (:mod:`.draw`; plain, or chosen or moved by its D: :mod:`.rejection`, :mod:`.transport`),
which metrics a dataset gets (:mod:`.plan`), the feature extractors (:mod:`.features`), the metrics
themselves (:mod:`.metrics`) and ``evaluate`` over all of them (:mod:`.measure`); walks through the
noise (:mod:`.interpolation`)."""
