"""SIGTERM / SIGINT become a request to stop after the current step (checkpoint, flush, exit).

A second signal (Ctrl-C twice) ends the process at once: after the first one the default
handlers are back, which the operating system applies immediately, even in the middle of a step.

Python runs signal handlers only when the main thread is executing Python, and a compiled step
can keep it inside TensorFlow for many seconds. :meth:`GracefulStop.call` therefore runs the step
in a worker thread while the main thread waits, so the first signal is answered at once too.

Usage::

    with GracefulStop() as stop:
        for ...:
            stop.call(step)
            if stop.requested:
                save(); break
"""

from __future__ import annotations

import concurrent.futures
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


class GracefulStop:
    SIGNALS = (signal.SIGTERM, signal.SIGINT)

    def __init__(self):
        self.signal: int | None = None
        self._previous = {}
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def requested(self) -> bool:
        return self.signal is not None

    def __enter__(self) -> GracefulStop:
        if threading.current_thread() is threading.main_thread():  # signals reach the main thread only
            for sig in self.SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
            self._worker = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="gantrain-step")
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        if self._worker is not None:
            self._worker.shutdown()

    def call(self, fn: Callable[..., Any], *args: Any) -> Any:
        """``fn(*args)``, with the main thread free to answer signals while it runs."""
        if self._worker is None:
            return fn(*args)
        return self._worker.submit(fn, *args).result()

    def _handle(self, signum: int, frame) -> None:
        self.signal = signum
        for sig in self.SIGNALS:
            signal.signal(sig, signal.SIG_DFL)  # the next signal ends the process, mid-step if need be
        again = "press Ctrl-C again" if signum == signal.SIGINT else "send it again"
        log.warning(
            "%s: stopping after this step, with a checkpoint (%s to stop at once, without one)",
            signal.Signals(signum).name,
            again,
        )
