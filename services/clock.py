"""The exchange clock: Asia/Kolkata time and NSE market hours.

Every service takes a ``Clock`` instead of calling ``datetime.now`` so that tests and the
simulator can run a trading day in milliseconds and replay it exactly.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

IST = ZoneInfo("Asia/Kolkata")
MARKET_OPEN = time(9, 15)
MARKET_CLOSE = time(15, 30)


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
    """Monday to Friday. Exchange holidays are not modelled yet (see docs/user-guide.md)."""
    return day.weekday() < 5


def is_market_open(ts: datetime, *, always_open: bool = False) -> bool:
    """Return True inside the NSE normal session, 09:15 to 15:30 IST on a trading day."""
    if always_open:
        return True
    local = to_ist(ts)
    return is_trading_day(local.date()) and MARKET_OPEN <= local.time() < MARKET_CLOSE


def session_open(day: date) -> datetime:
    return datetime.combine(day, MARKET_OPEN, tzinfo=IST)


def utc_now() -> datetime:
    return datetime.now(UTC)
