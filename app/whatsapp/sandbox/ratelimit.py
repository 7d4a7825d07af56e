"""A token bucket: `rate` tokens per second, holding at most `burst` (default: one second's worth)."""

from __future__ import annotations

import time
from collections.abc import Callable


class TokenBucket:
    def __init__(self, rate: float, burst: float | None = None, clock: Callable[[], float] = time.monotonic):
        self.rate = float(rate)
        self.burst = float(burst if burst is not None else max(1.0, self.rate))
        self._clock = clock
        self._tokens = self.burst
        self._last = clock()

    @property
    def unlimited(self) -> bool:
        return self.rate <= 0

    def try_acquire(self, tokens: float = 1.0) -> bool:
        if self.unlimited:
            return True
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
        self._last = now
        if self._tokens >= tokens:
            self._tokens -= tokens
            return True
        return False
