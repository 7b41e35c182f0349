"""Candles on the session grid, for store and router tests."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

from services.calendar import IST, default_calendar
from services.domain import Bar, Timeframe


def session_bars(key: str, timeframe: Timeframe, day: date, *, price: str = "1500.00") -> list[Bar]:
    session = default_calendar().session(day)
    assert session is not None, f"{day} does not trade"
    if timeframe is Timeframe.D1:
        starts = [session.opens_at]
    else:
        starts = []
        at = session.opens_at
        while at < session.closes_at:
            starts.append(at)
            at += timedelta(seconds=timeframe.seconds)
    p = Decimal(price)
    return [Bar(key, timeframe, s, p, p + 1, p - 1, p, 100, closed=True) for s in starts]


def at(day: date, hh: int, mm: int) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, tzinfo=IST)
