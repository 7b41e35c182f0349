"""Synthetic bars with a known, learnable structure: for tests, benchmarks and demos.

Returns follow an AR(1) process (``phi`` > 0 is momentum), so a model that reads recent
returns can beat both baselines by a margin we control, and ``phi = 0`` is a pure random walk
no model can beat.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal

import numpy as np

from services.clock import IST, MARKET_CLOSE, MARKET_OPEN
from services.domain import Bar, Timeframe


def session_starts(n: int, timeframe: Timeframe, first_day: date) -> list[datetime]:
    """Bar start times inside NSE hours, day after day (weekends included: it is synthetic)."""
    step = timedelta(seconds=timeframe.seconds)
    out: list[datetime] = []
    day = first_day
    while len(out) < n:
        t = datetime.combine(day, MARKET_OPEN, IST)
        end = datetime.combine(day, MARKET_CLOSE, IST)
        while t < end and len(out) < n:
            out.append(t)
            t += step
        day += timedelta(days=1)
        if timeframe is Timeframe.D1:
            out[-1] = datetime.combine(day, time(9, 15), IST)
    return out


def synthetic_bars(
    n: int,
    *,
    key: str = "NSE:SYNTH",
    timeframe: Timeframe = Timeframe.M5,
    seed: int = 0,
    phi: float = 0.3,
    sigma: float = 0.002,
    first_day: date = date(2026, 1, 5),
) -> list[Bar]:
    rng = np.random.default_rng(seed)
    eps = rng.normal(0.0, sigma, n)
    r = np.empty(n)
    r[0] = eps[0]
    for i in range(1, n):
        r[i] = phi * r[i - 1] + eps[i]
    close = 1000.0 * np.exp(np.cumsum(r))
    open_ = np.concatenate([[1000.0], close[:-1]])
    wiggle = np.abs(rng.normal(0.0, sigma / 2, (2, n)))
    high = np.maximum(open_, close) * (1 + wiggle[0])
    low = np.minimum(open_, close) * (1 - wiggle[1])
    volume = rng.lognormal(10.0, 0.5, n).astype(np.int64)
    starts = session_starts(n, timeframe, first_day)

    def px(x: float) -> Decimal:
        return Decimal(f"{x:.2f}")

    return [
        Bar(key, timeframe, starts[i], px(open_[i]), px(high[i]), px(low[i]), px(close[i]),
            int(volume[i]), closed=True)
        for i in range(n)
    ]
