"""A quiet console: TensorFlow's start-up noise is filtered out of stderr.

On a machine without a GPU, TensorFlow's C++ runtime prints lines such as ``E0000 ... failed call
to cuInit`` or ``remapper failed`` that are errors in name only (so is ``NodeDef mentions attribute
use_unbounded_threadpool`` when Keras trains from a tf.data pipeline), and on CPUs with AVX-512 or AMX
``I0000 ... oneDNN custom operations are on``. Some are written before
TensorFlow's log level applies, so they are filtered where they are written: file descriptor 2
goes through a small filter process that drops the lines matching :data:`NOISE` and passes
everything else on. Being a process of its own, it still delivers the last words of a process
that TensorFlow aborts. Python's own ``sys.stderr`` (progress bar, errors, tracebacks) bypasses
the filter.

Setting ``TF_CPP_MIN_LOG_LEVEL`` yourself (``TF_CPP_MIN_LOG_LEVEL=0 gantrain ...``) turns the
filter off and shows TensorFlow's full log.

Usage: ``console.quiet_tensorflow()`` first thing in a console entry point.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

NOISE = re.compile(
    rb"All log messages before absl::InitializeLog"
    rb"|Could not find cuda drivers|failed call to cuInit|cuda_(executor|platform|diagnostics)\.cc"
    rb"|Unable to register cu(DNN|FFT|BLAS) factory|computation_placer\.cc.*already registered"
    rb"|TF-TRT Warning|cpu_feature_guard\.cc|^To enable the following instructions"
    rb"|remapper failed|layout failed|Mutation::Apply error"
    rb"|oneDNN custom operations are on"  # on CPUs where TensorFlow turns oneDNN on, before its log level applies
    # An E-line, shown at any log level, when Keras trains from a tf.data pipeline (the MNIST feature
    # classifier): the pipeline names an attribute this runtime's op lacks, and the runtime ignores it.
    rb"|node_def_util\.cc.*NodeDef mentions attribute use_unbounded_threadpool"
)
# Where a native log line starts: a partial line like this waits for its end before it is judged.
_LOG_START = re.compile(rb"^([IWEF]\d{4} |WARNING: All log|To enable)")


def quiet_tensorflow() -> None:
    """Route file descriptor 2 through the filter, unless the user set TensorFlow's log level."""
    if "TF_CPP_MIN_LOG_LEVEL" in os.environ:
        return
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"  # INFO and WARNING lines of the C++ runtime: not shown
    try:
        original = os.dup(2)
        sys.stderr.flush()
        # A session of its own: Ctrl-C reaches gantrain, not the filter, which ends at end of input.
        here = str(Path(__file__).resolve().parents[2])  # this gantrain, however it was found
        filter_process = subprocess.Popen(
            [sys.executable, "-m", "gantrain.commands.console"],
            stdin=subprocess.PIPE,
            stdout=original,
            start_new_session=True,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))),
        )
    except OSError:
        return  # no filter: the console is only noisier
    assert filter_process.stdin is not None  # stdin=PIPE
    os.dup2(filter_process.stdin.fileno(), 2)
    filter_process.stdin.close()
    sys.stderr = open(original, "w", buffering=1, encoding=sys.stderr.encoding, errors="backslashreplace")


def _filter(source: int, sink: int) -> None:
    """Copy ``source`` to ``sink`` line by line, without the lines that match NOISE."""
    pending = b""
    while chunk := os.read(source, 65536):
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        kept = [line + b"\n" for line in lines if not NOISE.search(line)]
        if pending and not _LOG_START.match(pending):
            kept.append(pending)  # a progress bar's partial line: shown now, not at its newline
            pending = b""
        if kept:
            os.write(sink, b"".join(kept))
    if pending and not NOISE.search(pending):
        os.write(sink, pending)


if __name__ == "__main__":
    _filter(0, 1)
