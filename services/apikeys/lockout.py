"""Failed authentication per client address: after too many failures, block for a while.

Ten failures within fifteen minutes block the address; each further block of the same address
lasts twice as long as the previous one (1 min, 2 min, 4 min ... capped at a day), and the
escalation is forgotten after a day without a block. A blocked address is refused before its
credential is even looked at, so a correct guess during a block teaches the attacker nothing.
A success clears the failure count (NIST SP 800-63B 5.2.2) but not the escalation.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

MAX_FAILURES = 10
WINDOW_SECONDS = 15 * 60
FIRST_BLOCK_SECONDS = 60.0
MAX_BLOCK_SECONDS = 24 * 3600.0
FORGET_AFTER_SECONDS = 24 * 3600.0
MAX_TRACKED = 10_000


@dataclass
class _Address:
    failures: deque[float] = field(default_factory=deque)
    blocked_until: float = 0.0
    blocks: int = 0
    last_block: float = 0.0


@dataclass(frozen=True, slots=True)
class FailureOutcome:
    failures: int  # failures in the window, including this one
    blocked_for: float  # > 0 when this failure started a block


class AddressLockout:
    def __init__(
        self,
        *,
        max_failures: int = MAX_FAILURES,
        window: float = WINDOW_SECONDS,
        first_block: float = FIRST_BLOCK_SECONDS,
        max_block: float = MAX_BLOCK_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window = window
        self.first_block = first_block
        self.max_block = max_block
        self._monotonic = monotonic
        self._addresses: dict[str, _Address] = {}

    def retry_after(self, address: str) -> float:
        """Seconds left in the address's block, or 0 when it may try."""
        entry = self._addresses.get(address)
        if entry is None:
            return 0.0
        return max(0.0, entry.blocked_until - self._monotonic())

    def failure(self, address: str) -> FailureOutcome:
        now = self._monotonic()
        entry = self._addresses.get(address)
        if entry is None:
            if len(self._addresses) >= MAX_TRACKED:
                self._prune(now)
            entry = self._addresses[address] = _Address()
        if entry.blocks and now - entry.last_block > FORGET_AFTER_SECONDS:
            entry.blocks = 0
        failures = entry.failures
        failures.append(now)
        while failures and now - failures[0] > self.window:
            failures.popleft()
        count = len(failures)
        if count < self.max_failures:
            return FailureOutcome(count, 0.0)
        seconds = min(self.max_block, self.first_block * 2**entry.blocks)
        entry.blocks += 1
        entry.last_block = now
        entry.blocked_until = now + seconds
        failures.clear()
        return FailureOutcome(count, seconds)

    def success(self, address: str) -> None:
        entry = self._addresses.get(address)
        if entry is not None:
            entry.failures.clear()

    def blocked_count(self) -> int:
        now = self._monotonic()
        return sum(1 for e in self._addresses.values() if e.blocked_until > now)

    def _prune(self, now: float) -> None:
        """Drop addresses with nothing to remember, so a scan from many addresses stays bounded."""
        for address, entry in list(self._addresses.items()):
            stale = not entry.failures or now - entry.failures[-1] > self.window
            if stale and entry.blocked_until <= now and (
                not entry.blocks or now - entry.last_block > FORGET_AFTER_SECONDS
            ):
                del self._addresses[address]
        if len(self._addresses) >= MAX_TRACKED:  # still full: forget the oldest unblocked
            for address, entry in list(self._addresses.items()):
                if entry.blocked_until <= now:
                    del self._addresses[address]
                    break
