"""Errors a user can fix. The CLI prints them as one line (no traceback) and exits non-zero."""


class GantrainError(Exception):
    """A problem with the user's input or environment, explained in one sentence."""


class ConfigError(GantrainError):
    """A bad config value; the message starts with the dotted key, e.g. ``train.steps: ...``."""

    def __init__(self, key: str, message: str):
        super().__init__(f"{key}: {message}")
        self.key = key
