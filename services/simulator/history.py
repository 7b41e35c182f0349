"""Synthetic past bars, so a chart opened at start-up has something to show.

The path is generated backwards from the current price: the newest bar closes where the
market is now and each bar opens where the one before it closed, so the history joins the
live ticks without a jump. Volatility per bar follows the same scaling and intraday profile
as the live simulator.
"""

from __future__ import annotations

import hashlib
import math
import random
from datetime import datetime

from services.bars import SESSION_SECONDS, bucket_end
from services.domain import Timeframe
from services.simulator.pricing import intraday_profile, session_fraction

OHLC = tuple[float, float, float, float]


def history_rng(*parts: object) -> random.Random:
    """Return a generator seeded from ``parts`` with a stable hash (``hash()`` is salted)."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311 -- not a secret


def bar_shape(starts: list[datetime], timeframe: Timeframe) -> list[tuple[float, float, float]]:
    """Return (seconds, profile, mid-time epoch) per bucket: how much each bar can move."""
    shape: list[tuple[float, float, float]] = []
    for start in starts:
        if timeframe is Timeframe.D1:
            seconds = float(SESSION_SECONDS)
            shape.append((seconds, 1.0, start.timestamp() + seconds / 2))
            continue
        seconds = (bucket_end(start, timeframe) - start).total_seconds()
        mid = start.timestamp() + seconds / 2
        frac = session_fraction(start)
        shape.append((seconds, intraday_profile(frac), mid))
    return shape


def backward_path(
    rng: random.Random,
    last_close: float,
    shape: list[tuple[float, float, float]],
    variance_per_second: float,
) -> list[OHLC]:
    """Return float OHLC per bucket, oldest first, the newest closing at ``last_close``."""
    bars: list[OHLC] = []
    close = last_close
    for seconds, profile, _mid in reversed(shape):
        sd = math.sqrt(variance_per_second * seconds * profile)
        opening = close * math.exp(-rng.gauss(0.0, sd))
        high = max(opening, close) * math.exp(abs(rng.gauss(0.0, 0.6 * sd)))
        low = min(opening, close) * math.exp(-abs(rng.gauss(0.0, 0.6 * sd)))
        bars.append((opening, high, low, close))
        close = opening
    bars.reverse()
    return bars
