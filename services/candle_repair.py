"""Candles missed while the feed was down, filled in from the broker's historical data.

Bars are built from ticks; ticks that never arrived leave a hole in the chart (and in every
feature computed from it). After a reconnect we ask the broker for the 1-minute candles
from the last bar we built up to now and merge them into the bar builder's history: the
broker's candles replace ours for the same minute (ours were built from partial ticks), and
the bar being built live is left alone.

Kite allows about three historical requests a second, so instruments are repaired one after
another with a pause between requests.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Iterable
from datetime import datetime, timedelta

from services.bars import BarBuilder, aggregate, bucket_end
from services.broker import BrokerError
from services.clock import Clock
from services.domain import Bar, Timeframe

log = logging.getLogger(__name__)

HistoryFn = Callable[[str, Timeframe, datetime, datetime], Awaitable[list[Bar]]]
MAX_GAP = timedelta(days=1)


class CandleRepair:
    def __init__(
        self,
        bars: BarBuilder,
        history: HistoryFn,
        clock: Clock,
        keys: Callable[[], Iterable[str]],
        *,
        timeframe: Timeframe = Timeframe.M1,
        pause: float = 0.35,
    ) -> None:
        self._bars = bars
        self._history = history
        self._clock = clock
        self._keys = keys
        self.timeframe = timeframe
        self._pause = pause
        self.repaired: dict[str, int] = {}  # key -> bars merged by the last repair

    async def repair(self) -> dict[str, int]:
        """Repair every key that has bars; return how many broker bars each one received."""
        self.repaired = {}
        first = True
        for key in list(self._keys()):
            existing = self._bars.bars(key, self.timeframe)
            if not existing:
                continue  # nothing built yet: the chart loads full history on demand
            if not first and self._pause:
                await asyncio.sleep(self._pause)
            first = False
            now = self._clock.now()
            # From the last bar closed before the gap: ticks may have resumed (a live bar
            # after the hole) before the repair runs.
            closed = [b for b in existing if b.closed]
            start = max((closed or existing)[-1].start, now - MAX_GAP)
            try:
                fetched = await self._history(key, self.timeframe, start, now)
            except BrokerError as exc:
                log.warning("cannot repair candles of %s: %s", key, exc)
                continue
            self.repaired[key] = self.merge(key, fetched, now)
        return self.repaired

    def merge(self, key: str, fetched: list[Bar], now: datetime) -> int:
        """Merge the candles of ``fetched`` that ended by ``now``; return how many were used.

        A candle still in progress is left out: seeded as closed, it would make the bar
        builder drop the rest of that minute's ticks.
        """
        current = self._bars.bars(key, self.timeframe)
        live = current[-1] if current and not current[-1].closed else None
        merged = {b.start: b for b in current if b.closed}
        size = timedelta(seconds=self.timeframe.seconds)
        used = 0
        for bar in fetched:
            if (live is not None and bar.start >= live.start) or bar.start + size > now:
                continue
            merged[bar.start] = Bar(
                bar.key, bar.timeframe, bar.start, bar.open, bar.high, bar.low, bar.close,
                bar.volume, closed=True,
            )  # fmt: skip
            used += 1
        self._bars.seed(key, self.timeframe, merged.values())
        if used and self.timeframe is Timeframe.M1:
            self._roll_up(key, merged.values(), now, min(b.start for b in fetched))
        return used

    def _roll_up(self, key: str, minutes: Iterable[Bar], now: datetime, since: datetime) -> None:
        """Rebuild the closed intraday bars the gap touched (5m, 15m, 1h) from the minutes."""
        for timeframe in self._bars.timeframes:
            if timeframe in (Timeframe.M1, Timeframe.D1):
                continue
            touched = [
                b
                for b in aggregate(minutes, timeframe, now)
                if bucket_end(b.start, timeframe) > since
            ]
            if not touched:
                continue
            current = {b.start: b for b in self._bars.bars(key, timeframe) if b.closed}
            current.update((b.start, b) for b in touched)
            self._bars.seed(key, timeframe, current.values())  # the live bar is kept as is
