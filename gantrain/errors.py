"""Errors a user can fix. The CLI prints them as one line (no traceback) and exits non-zero."""

import difflib
from collections.abc import Iterable


class GantrainError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""


class ConfigError(GantrainError):
    """A bad config value; the message starts with the dotted key, e.g. ``train.steps: ...``."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key


def file_error(err: OSError) -> GantrainError:
    """A file-system fault (a full disk, a read-only or missing folder, a folder where a file goes)
    as one sentence naming the path."""
    where = f"{err.filename} -> {err.filename2}" if err.filename2 else err.filename
    reason = err.strerror or str(err)
    return GantrainError(f"cannot write or read {where} ({reason})" if where else reason)


def naming(err: OSError, path: object) -> OSError:
    """``err``, or a copy of it naming ``path`` when it names no file (a failed write() does not)."""
    return err if err.filename is not None else OSError(err.errno, err.strerror, str(path))


def nearest(name: str, known: Iterable[str], prefix: str = "", or_list: bool = True) -> str:
    """ "; did you mean <prefix><closest>?" when one of ``known`` is close to ``name`` (a typo), else
    "; known: <all of them>" (or nothing, without ``or_list``)."""
    near = difflib.get_close_matches(name, sorted(known), n=1)
    if near:
        return f"; did you mean {prefix}{near[0]}?"
    return f"; known: {', '.join(sorted(known))}" if or_list else ""
