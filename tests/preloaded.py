"""The ``gantrain`` command in processes forked from one that imported TensorFlow already
(multiprocessing's forkserver, with TensorFlow and the command preloaded).

For a test that starts the command many times to kill it: each start is a process of its own,
killed like any other, without the 5 s a new interpreter spends importing TensorFlow. Not for tests
of the console script or of what its start-up prints (the import's messages went to the server's
stderr, once): those run the script itself (conftest.gantrain).

This module imports nothing of the tests' set-up: the forked processes must not see conftest's
two logical CPUs.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
from pathlib import Path

# The server imports these once; every process forked from it starts with them imported. Nothing
# is initialised before the fork (TensorFlow's devices and threads start in each process).
CONTEXT = multiprocessing.get_context("forkserver")
CONTEXT.set_forkserver_preload(["tensorflow", "gantrain.commands.train", "gantrain.run.train"])


def start(args: list[str], cwd: Path, env: dict[str, str], stdout: Path, stderr: Path):
    """``gantrain *args`` in ``cwd`` with ``env`` as its whole environment, its output written to
    the files ``stdout`` and ``stderr``; a started multiprocessing Process (``is_alive()``,
    ``kill()``, ``terminate()``, ``join()``, ``exitcode``: negative for the signal that ended it)."""
    process = CONTEXT.Process(target=_gantrain, args=(args, str(cwd), env, str(stdout), str(stderr)), daemon=True)
    process.start()
    return process


def _gantrain(args: list[str], cwd: str, env: dict[str, str], stdout: str, stderr: str) -> None:
    os.environ.clear()
    os.environ.update(env)
    os.chdir(cwd)
    with open(stdout, "w") as out, open(stderr, "w") as err:
        os.dup2(out.fileno(), sys.stdout.fileno())
        os.dup2(err.fileno(), sys.stderr.fileno())
    sys.argv = ["gantrain", *args]
    from gantrain.commands.train import main  # imported by the server already

    main()
