"""Deterministic prices for the fakes: the same symbol and minute always give the same bar."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from datetime import datetime, timedelta

import numpy as np

from services.calendar import IST, default_calendar


def base_price(symbol: str) -> float:
    digest = hashlib.blake2b(symbol.encode(), digest_size=4).digest()
    return 200.0 + int.from_bytes(digest, "big") % 3000


def price_at(symbol: str, epoch: float) -> float:
    base = base_price(symbol)
    return base * (1 + 0.03 * math.sin(epoch / 86_400) + 0.004 * math.sin(epoch / 731))


def ohlcv(symbol: str, start: float, seconds: int) -> tuple[float, float, float, float, int]:
    """One bar from ``start`` (epoch seconds) lasting ``seconds``."""
    o = price_at(symbol, start)
    c = price_at(symbol, start + max(seconds - 60, 0))
    h = max(o, c) * 1.0012
    lo = min(o, c) * 0.9988
    v = 1000 + int(start // 60) % 997
    return o, h, lo, c, v


def f32(x: float) -> float:
    """Yahoo sends prices as float32 values widened to JSON doubles (1523.449951171875)."""
    return float(np.float32(x))


def session_starts(start: datetime, end: datetime, seconds: int) -> Iterator[datetime]:
    """Bar starts of every NSE session in ``[start, end)`` at ``seconds`` spacing."""
    cal = default_calendar()
    day = start.astimezone(IST).date()
    last = end.astimezone(IST).date()
    while day <= last:
        session = cal.session(day)
        if session is not None:
            if seconds >= 86_400:
                if start <= session.opens_at < end:
                    yield session.opens_at
            else:
                at = session.opens_at
                while at < session.closes_at:
                    if start <= at < end:
                        yield at
                    at += timedelta(seconds=seconds)
        day += timedelta(days=1)
