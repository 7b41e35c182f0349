"""The exchange clock: Asia/Kolkata time and NSE market hours.

Every service takes a ``Clock`` instead of calling ``datetime.now`` so that tests and the
simulator can run a trading day in milliseconds and replay it exactly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from services.calendar import IST as IST
from services.calendar import REGULAR_CLOSE, REGULAR_OPEN, default_calendar

MARKET_OPEN: time = REGULAR_OPEN
MARKET_CLOSE: time = REGULAR_CLOSE


class Clock(Protocol):
    def now(self) -> datetime:
        """Return the current time, timezone-aware."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(IST)


class ManualClock:
    """A clock that moves only when told to: for tests and deterministic replays."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs a timezone-aware start time")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

    def set(self, when: datetime) -> None:
        if when.tzinfo is None:
            raise ValueError("ManualClock needs timezone-aware times")
        self._now = when


def to_ist(ts: datetime) -> datetime:
    if ts.tzinfo is None:
        raise ValueError("naive datetime: the exchange clock needs an aware time")
    return ts.astimezone(IST)


def is_trading_day(day: date) -> bool:
    """A day NSE's cash market trades: weekdays that are not holidays, plus special sessions
    (``services.calendar``)."""
    return default_calendar().is_trading_day(day)


def is_market_open(ts: datetime, *, always_open: bool = False) -> bool:
    """Return True inside the day's NSE session (09:15 to 15:30 IST, or a special session's
    own hours)."""
    if always_open:
        return True
    local = to_ist(ts)
    session = default_calendar().session(local.date())
    return session is not None and session.open <= local.time() < session.close


def session_open(day: date) -> datetime:
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST)


def utc_now() -> datetime:
    return datetime.now(UTC)
