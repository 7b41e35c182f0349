"""Failed-unlock lockout, persisted beside the database.

The count lives in a small plain file, not in the database (which is exactly what cannot be
read yet), so restarting the terminal does not reset it. It slows guessing through the app;
someone who can copy the encrypted file is slowed by the key (random 256-bit) or by Argon2id
instead.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

from services.security.errors import LockedOutError

THRESHOLD = 5
MAX_DELAY_S = 900.0


def backoff_seconds(failures: int) -> float:
    """0 below the threshold, then 1, 2, 4, ... seconds, capped at 15 minutes."""
    if failures < THRESHOLD:
        return 0.0
    return min(float(2 ** (failures - THRESHOLD)), MAX_DELAY_S)


def write_json_atomic(path: Path, data: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_CREAT | os.O_TRUNC | os.O_WRONLY, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class Lockout:
    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self._clock = clock

    def _load(self) -> tuple[int, float, float]:
        """(failures, first_failure, last_failure)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
            return int(raw["failures"]), float(raw["first_failure"]), float(raw["last_failure"])
        except FileNotFoundError:
            return 0, 0.0, 0.0
        except (ValueError, KeyError, TypeError, OSError):
            # A damaged file must not unlock the gate: treat it as a fresh lockout.
            now = self._clock()
            return THRESHOLD, now, now

    @property
    def failures(self) -> int:
        return self._load()[0]

    def retry_after(self) -> float:
        failures, _, last = self._load()
        delay = backoff_seconds(failures)
        if delay == 0:
            return 0.0
        now = self._clock()
        if now < last:  # the clock went back: wait the whole delay from now
            return delay
        return max(0.0, last + delay - now)

    def check(self) -> None:
        wait = self.retry_after()
        if wait > 0:
            raise LockedOutError(wait)

    def record_failure(self) -> int:
        failures, first, _ = self._load()
        now = self._clock()
        failures += 1
        write_json_atomic(
            self.path,
            {"failures": failures, "first_failure": first or now, "last_failure": now},
        )
        return failures

    def record_success(self) -> tuple[int, float, float]:
        """Clear the count; return what was cleared (for the audit log)."""
        state = self._load()
        if self.path.exists():
            self.path.unlink()
        return state
