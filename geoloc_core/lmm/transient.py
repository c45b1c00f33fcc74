"""The openai client's exceptions that mean "try again": 429, 5xx, timeouts, dropped
connections (lmm/retry.py decides how long to wait)."""

import openai

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    openai.RateLimitError,
    openai.InternalServerError,
    openai.APITimeoutError,
    openai.APIConnectionError,
)
