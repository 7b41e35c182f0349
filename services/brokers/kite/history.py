"""The ``HistoryProvider`` port on Kite's historical API (a paid add-on of the Kite Connect app).

Kite serves each interval for a limited span per request (60 days of minutes, 100 of 5- and
10-minute candles, 200 of 15-minute, 400 of hourly, 2,000 of daily) and 3 requests a second,
so a longer range is fetched in chunks, paced. Without the add-on Kite answers with a
``PermissionException``: ``PermissionDenied`` tells the caller to fall back.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from services.brokers.ports import Coverage, InstrumentMaster
from services.clock import Clock
from services.domain import LIVE_TIMEFRAMES, Bar, Timeframe

COVERAGE = Coverage(
    intervals=frozenset(LIVE_TIMEFRAMES),  # Kite has no 1-second candles
    span_per_call={
        Timeframe.M1: timedelta(days=60),
        Timeframe.M5: timedelta(days=100),
        Timeframe.M15: timedelta(days=200),
        Timeframe.M30: timedelta(days=200),
        Timeframe.H1: timedelta(days=400),
        Timeframe.D1: timedelta(days=2000),
    },
    calls_per_second=3.0,
)

Fetch = Callable[[str, int, Timeframe, datetime, datetime], Awaitable[list[Bar]]]


class KiteHistory:
    """Candles by key: the key's token comes from the day's master (``use_master``)."""

    coverage = COVERAGE

    def __init__(
        self,
        fetch: Fetch,
        clock: Clock,
        *,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._fetch = fetch
        self._clock = clock
        self._sleep = sleep
        self._master = InstrumentMaster("kite", None, ())

    def use_master(self, master: InstrumentMaster) -> None:
        self._master = master

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        self.coverage.check(timeframe, start, end, self._clock.now())
        token = int(self._master.broker_id(key))
        bars: list[Bar] = []
        pause = 1.0 / (self.coverage.calls_per_second or 1.0)
        for i, (a, b) in enumerate(self.coverage.chunks(timeframe, start, end)):
            if i:
                await self._sleep(pause)
            bars.extend(await self._fetch(key, token, timeframe, a, b))
        unique = {bar.start: bar for bar in bars if start <= bar.start < end}
        return [unique[t] for t in sorted(unique)]
