"""When to retry a failed LMM request and how long to wait (shared by every LMM client).

429, 5xx, timeouts and dropped connections are transient; a server's Retry-After (or
OpenAI's retry-after-ms) wins over our own exponential backoff. Jitter spreads the retries of
many threads so that they do not hit a recovering server in lockstep. Which exceptions count
as transient is in lmm/transient.py, so this module loads without the openai package.
"""

from __future__ import annotations

import random

MAX_BACKOFF_S = 60.0


def retry_after_s(exc: BaseException) -> float | None:
    """The wait a server asked for in its response headers, if any (seconds)."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            seconds = float(value) * scale
        except ValueError:
            continue  # an HTTP date: fall back to our own backoff
        if seconds >= 0:
            return seconds
    return None


def backoff_delay(
    attempt: int,
    backoff_s: float,
    retry_after: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait before retry number attempt + 1 (attempt counts from 0).

    Without Retry-After: "equal jitter", uniform in [d/2, d] for d = backoff_s * 2**attempt,
    so the wait still grows but threads spread out. With it: the server's wait plus up to a
    tenth of backoff_s, never less than it asked for. Both are capped at MAX_BACKOFF_S.
    """
    draw = (rng or random).random()
    if retry_after is not None:
        return min(retry_after + 0.1 * backoff_s * draw, MAX_BACKOFF_S)
    ceiling = min(backoff_s * (2**attempt), MAX_BACKOFF_S)
    return ceiling * (0.5 + 0.5 * draw)


def retry_delay(attempt: int, backoff_s: float, exc: BaseException) -> float:
    """backoff_delay with the Retry-After the failed response carried."""
    return backoff_delay(attempt, backoff_s, retry_after_s(exc))
