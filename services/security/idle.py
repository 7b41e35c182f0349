"""Idle auto-lock timer: pure state, so the desktop drives it from its own event filter and
tests drive it with plain numbers."""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_IDLE_TIMEOUT_S = 300.0


@dataclass
class IdleLock:
    last_activity: float
    timeout: float = DEFAULT_IDLE_TIMEOUT_S
    locked: bool = False

    def touch(self, now: float) -> None:
        """Record user activity; does not unlock (only a successful unlock does)."""
        if not self.locked:
            self.last_activity = max(self.last_activity, now)

    def is_locked(self, now: float) -> bool:
        if not self.locked and now - self.last_activity >= self.timeout:
            self.locked = True
        return self.locked

    def lock(self) -> None:
        self.locked = True

    def unlocked(self, now: float) -> None:
        self.locked = False
        self.last_activity = now

    def seconds_left(self, now: float) -> float:
        return 0.0 if self.is_locked(now) else self.timeout - (now - self.last_activity)
