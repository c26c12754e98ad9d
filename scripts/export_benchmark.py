"""Export a trained run in every format and measure it: each format's export time and size, and the
SavedModel's ``sample`` throughput (images, or points, per second) at batch 1 and 64.

The exports go into a temporary folder that is removed afterwards; ONNX only when its extra is
installed (``pip install "gantrain[onnx]"``), and a format whose converter refuses the model is
reported as such. The first call of ``sample`` (its start-up) is not timed.

Usage: ``python scripts/export_benchmark.py outputs/mnist [--repeats 20]``
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402

from gantrain.commands.export import export  # noqa: E402
from gantrain.errors import GantrainError  # noqa: E402
from gantrain.export_formats import FORMATS  # noqa: E402


def size_of(path: Path) -> int:
    """Bytes of a file, or of every file under a folder."""
    return path.stat().st_size if path.is_file() else sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def sample_rate(savedmodel: Path, batch: int, repeats: int, conditional: bool) -> float:
    """``sample`` calls per second times ``batch``: samples per second on this machine."""
    model = tf.saved_model.load(str(savedmodel))
    seeds = tf.range(batch, dtype=tf.int64)
    args = (seeds, seeds % 10) if conditional else (seeds,)
    model.sample(*args)  # traced and warmed up, not timed
    start = time.perf_counter()
    for _ in range(repeats):
        model.sample(*args)
    return batch * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dir", help="a trained gantrain run directory")
    parser.add_argument("--repeats", type=int, default=20, help="timed sample() calls per batch size")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        print(f"{'format':<11} {'export s':>9} {'size MB':>9}")
        for format in FORMATS:
            start = time.perf_counter()
            try:
                summary = export(options.run_dir, Path(folder) / format, format=format)
            except GantrainError as err:
                print(f"{format:<11} {'-':>9} {'-':>9}  {err}")
                continue
            seconds = time.perf_counter() - start
            print(f"{format:<11} {seconds:>9.2f} {size_of(Path(summary['file'])) / 1e6:>9.3f}")
        savedmodel = Path(folder) / "savedmodel" / "savedmodel"
        conditional = "labels" in str(
            tf.saved_model.load(str(savedmodel)).signatures["sample"].structured_input_signature
        )
        for batch in (1, 64):
            rate = sample_rate(savedmodel, batch, options.repeats, conditional)
            print(f"SavedModel sample, batch {batch:>2}: {rate:,.0f} samples/s")


if __name__ == "__main__":
    main()
