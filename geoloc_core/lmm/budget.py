"""A per-run budget of requests and tokens, shared by the threads of one run.

A request is allowed while both counts are under their limits. Token usage is only known once
a response arrives, so requests already in flight when the token limit is reached still
finish (the overshoot is at most max_concurrency responses): stopping them would throw away
answers that are already paid for.
"""

from __future__ import annotations

import threading


class RunBudget:
    def __init__(self, max_requests: int, max_tokens: int | None = None) -> None:
        self.max_requests = max_requests
        self.max_tokens = max_tokens
        self.requests = 0
        self.tokens = 0
        self.exhausted = False
        self._lock = threading.Lock()

    def spend_request(self) -> bool:
        """Take one request; False, and exhausted from then on, when the budget is spent."""
        with self._lock:
            over_tokens = self.max_tokens is not None and self.tokens >= self.max_tokens
            if self.requests >= self.max_requests or over_tokens:
                self.exhausted = True
                return False
            self.requests += 1
            return True

    def add_tokens(self, count: int) -> None:
        with self._lock:
            self.tokens += max(int(count), 0)


class RequestBudget(RunBudget):
    """Requests only (the place-text step's budget): spend() is spend_request()."""

    def __init__(self, limit: int) -> None:
        super().__init__(limit)
        self.limit = limit

    def spend(self) -> bool:
        return self.spend_request()
