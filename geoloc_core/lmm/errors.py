"""The one exception the LMM stage raises: a setup it cannot run with, said plainly."""


class LmmStageError(RuntimeError):
    """The message names the setting or file to fix; it never quotes an API key or a reply."""
