"""A logged-in broker's historical API as one more provider (Kite now; Upstox, Breeze and
Angel One as their adapters land): any ``services.brokers.ports.HistoryProvider``.

Broker history is live (not delayed), covers what the broker lists (cash, indices, F&O with
its own instrument master) and is paced by the broker's own call rate. Its coverage is the
broker's ``Coverage``, translated; the broker adapter itself refuses a range outside it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime

from services.brokers.ports import Coverage, HistoryProvider
from services.calendar import IST, REGULAR_OPEN, default_calendar
from services.domain import Bar, Timeframe
from services.marketdata.coverage import (
    BSE_EQUITY,
    NFO,
    NSE_EQUITY,
    NSE_INDEX,
    Interval,
    ProviderCoverage,
    RateLimit,
)


def broker_coverage(name: str, port: HistoryProvider) -> ProviderCoverage:
    cov = port.coverage
    return ProviderCoverage(
        name=name,
        families=frozenset({NSE_EQUITY, BSE_EQUITY, NSE_INDEX, NFO}),
        intervals={tf: Interval(lookback=cov.lookback.get(tf), span=cov.span_per_call.get(tf))
                   for tf in sorted(cov.intervals, key=lambda t: t.seconds)},
        delayed=False,
        auth="broker login (the day's session)",
        rate=RateLimit(per_second=cov.calls_per_second or 1.0, burst=1),
        notes="live; may need the broker's paid historical-data plan (Kite: an add-on)",
    )


class BrokerHistory:
    def __init__(self, broker: str, port: HistoryProvider) -> None:
        self.name = f"broker:{broker}"
        self.port = port
        self.info = broker_coverage(self.name, port)
        self.coverage = port.coverage

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        bars = await self.port.candles(key, timeframe, start, end)
        if timeframe is not Timeframe.D1:
            return bars
        # Brokers stamp a daily candle at midnight IST; the terminal stamps it at the open
        # of that day's session (as the bar builder does).
        calendar = default_calendar()
        out = []
        for bar in bars:
            day = bar.start.astimezone(IST).date()
            session = calendar.session(day)
            opens = session.opens_at if session is not None else datetime.combine(
                day, REGULAR_OPEN, tzinfo=IST)
            out.append(replace(bar, start=opens))
        return out

    async def close(self) -> None:
        return None


class FunctionHistory:
    """A ``HistoryProvider`` from a broker's declared coverage and its candle call: for a
    runtime that holds the broker's session and instrument tokens itself."""

    def __init__(
        self,
        coverage: Coverage,
        fetch: Callable[[str, Timeframe, datetime, datetime], Awaitable[list[Bar]]],
    ) -> None:
        self.coverage = coverage
        self._fetch = fetch

    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        bars: list[Bar] = []
        for lo, hi in self.coverage.chunks(timeframe, start, end):
            bars.extend(await self._fetch(key, timeframe, lo, hi))
        unique = {b.start: b for b in bars if start <= b.start < end}
        return [unique[t] for t in sorted(unique)]
