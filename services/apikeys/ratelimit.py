"""Per-key token buckets: a steady request rate with room for short bursts.

A refused request learns how long until one token is back, which the server sends as
``Retry-After`` so a well-behaved client waits exactly enough instead of hammering.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class TokenBucket:
    rate: float  # tokens added per second
    capacity: float
    tokens: float
    updated: float

    def take(self, now: float, cost: float = 1.0) -> float:
        """Take ``cost`` tokens; return 0 on success, else the seconds until they are there."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now
        if self.tokens >= cost:
            self.tokens -= cost
            return 0.0
        return (cost - self.tokens) / self.rate


class KeyRateLimiter:
    """One bucket per API key id; the number of buckets is bounded by the number of keys."""

    def __init__(
        self,
        rate: float = 20.0,
        burst: float = 40.0,
        *,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self._monotonic = monotonic
        self._buckets: dict[str, TokenBucket] = {}

    def check(self, key_id: str) -> float:
        """Return 0 to let the request through, else the seconds to wait (> 0)."""
        now = self._monotonic()
        bucket = self._buckets.get(key_id)
        if bucket is None:
            bucket = self._buckets[key_id] = TokenBucket(self.rate, self.burst, self.burst, now)
        return bucket.take(now)


def retry_after_header(seconds: float) -> str:
    """``Retry-After`` takes whole seconds; round up so the client is never early."""
    return str(max(1, math.ceil(seconds)))
