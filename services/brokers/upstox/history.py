"""``UpstoxHistory``: the ``HistoryProvider`` port on Upstox's v3 historical candles.

``/v3/historical-candle/{key}/{unit}/{interval}/{to}/{from}`` (research/wave2.md §1): minute
candles from January 2022, at most one month per call up to 15-minute bars (a quarter for
hours), daily candles from 2000. Dates are inclusive IST calendar days; candles come back
newest first as ``[timestamp, open, high, low, close, volume, oi]``. Expired F&O contracts
need Upstox Plus (UDAPI1149) and are outside the declared coverage.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from services.brokers.ports import Coverage, InstrumentMaster
from services.brokers.upstox import mapping
from services.brokers.upstox.client import UpstoxApi
from services.brokers.upstox.instruments import MasterCache
from services.clock import IST, Clock, SystemClock, to_ist
from services.domain import Bar, Timeframe

UNITS: dict[Timeframe, tuple[str, int]] = {
    Timeframe.M1: ("minutes", 1),
    Timeframe.M5: ("minutes", 5),
    Timeframe.M15: ("minutes", 15),
    Timeframe.M30: ("minutes", 30),
    Timeframe.H1: ("hours", 1),
    Timeframe.D1: ("days", 1),
}
INTRADAY_SINCE = datetime(2022, 1, 1, tzinfo=IST)
DAILY_SINCE = datetime(2000, 1, 1, tzinfo=IST)


def coverage(now: datetime) -> Coverage:
    intraday = now - INTRADAY_SINCE
    return Coverage(
        intervals=frozenset(UNITS),
        lookback={
            Timeframe.M1: intraday,
            Timeframe.M5: intraday,
            Timeframe.M15: intraday,
            Timeframe.M30: intraday,
            Timeframe.H1: intraday,
            Timeframe.D1: now - DAILY_SINCE,
        },
        span_per_call={
            Timeframe.M1: timedelta(days=30),
            Timeframe.M5: timedelta(days=30),
            Timeframe.M15: timedelta(days=30),
            Timeframe.M30: timedelta(days=90),
            Timeframe.H1: timedelta(days=90),
            Timeframe.D1: timedelta(days=3650),
        },
        calls_per_second=25.0,
    )


class UpstoxHistory:
    """Candles for canonical keys; ``coverage`` is recomputed from the clock on each call."""

    def __init__(
        self,
        api: UpstoxApi,
        master: InstrumentMaster | MasterCache,
        *,
        clock: Clock | None = None,
    ) -> None:
        self.api = api
        self.masters = MasterCache.fixed(master) if isinstance(master, InstrumentMaster) else master
        self._clock = clock or SystemClock()
        self.coverage = coverage(self._clock.now())

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        now = self._clock.now()
        self.coverage = coverage(now)
        self.coverage.check(timeframe, start, end, now)
        instrument_key = str((await self.masters.get()).broker_id(key))
        unit, interval = UNITS[timeframe]
        bars: dict[datetime, Bar] = {}
        for chunk_start, chunk_end in self.coverage.chunks(timeframe, start, end):
            first = to_ist(chunk_start).date()
            last = to_ist(chunk_end - timedelta(microseconds=1)).date()
            response = await self.api.call(
                "read history",
                self.api.history.get_historical_candle_data1,
                instrument_key,
                unit,
                interval,
                last.isoformat(),
                first.isoformat(),
            )
            for row in (response.data.candles if response.data else None) or []:
                at = mapping.parse_ts(row[0])
                if at is None or not (start <= at < end):
                    continue
                bars[at] = Bar(
                    key=key,
                    timeframe=timeframe,
                    start=at,
                    open=mapping.dec(row[1]),
                    high=mapping.dec(row[2]),
                    low=mapping.dec(row[3]),
                    close=mapping.dec(row[4]),
                    volume=int(row[5] or 0),
                    closed=True,
                )
        return [bars[at] for at in sorted(bars)]
