"""A circuit breaker per provider: stop asking a provider that is failing, try it again later.

Closed: requests flow. After ``threshold`` failures in a row, or at once on an answer that
says "stop" (429, a bot wall's 403, a spent quota), it opens: the router skips the provider
for ``cooldown`` seconds, doubled on each re-opening up to ``max_cooldown`` (or the
provider's own retry-after). Then it is half-open: one request is let through as a probe;
success closes the circuit, failure opens it again for longer.
"""

from __future__ import annotations

import enum
import time
from collections.abc import Callable
from dataclasses import dataclass, field


class BreakerState(enum.StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


@dataclass
class CircuitBreaker:
    threshold: int = 3
    cooldown: float = 30.0
    max_cooldown: float = 1800.0
    clock: Callable[[], float] = time.monotonic
    failures: int = field(init=False, default=0)
    opened: int = field(init=False, default=0)  # times opened since the last success
    reason: str = field(init=False, default="")
    _open_until: float = field(init=False, default=0.0)
    _probing: bool = field(init=False, default=False)

    @property
    def state(self) -> BreakerState:
        if not self._open_until:
            return BreakerState.CLOSED
        if self.clock() < self._open_until:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def retry_in(self) -> float:
        return max(0.0, self._open_until - self.clock())

    def allow(self) -> bool:
        """May a request go now? In half-open, only one probe at a time."""
        state = self.state
        if state is BreakerState.CLOSED:
            return True
        if state is BreakerState.OPEN or self._probing:
            return False
        self._probing = True
        return True

    def success(self) -> None:
        self.failures = 0
        self.opened = 0
        self.reason = ""
        self._open_until = 0.0
        self._probing = False

    def failure(
        self, reason: str, *, trips: bool = False, retry_after: float | None = None
    ) -> None:
        self.failures += 1
        self.reason = reason
        half_open_probe = self._probing
        self._probing = False
        if trips or half_open_probe or self.failures >= self.threshold:
            self.failures = max(self.failures, self.threshold)
            wait = min(self.cooldown * (2 ** self.opened), self.max_cooldown)
            if retry_after is not None:
                wait = max(wait, retry_after)
            self.opened += 1
            self._open_until = self.clock() + wait

    def release(self) -> None:
        """A probe that ended without a verdict (not covered, no data): let another probe."""
        self._probing = False
