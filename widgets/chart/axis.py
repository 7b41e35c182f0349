"""A bottom axis for a chart whose x is the bar index, labelled with the bars' IST times.

Using the index rather than the time as x keeps candles evenly spaced across nights,
weekends and holidays, as traders expect; the axis translates back for the labels. Ticks sit
on the first bar of a round calendar interval (the hour, the day, the month), so labels read
09:15 ... 10:00 ... 11:00 rather than every n-th bar at arbitrary times.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import numpy as np
import pyqtgraph as pg

from services.clock import IST
from services.domain import Timeframe
from widgets.chart.indicators import FloatArray
from widgets.chart.series import BarSeries

_IST_OFFSET = 19_800  # seconds east of UTC; India has no daylight saving
_SESSION = 22_500  # seconds in the NSE normal session, 09:15 to 15:30
_MIN_LABEL_PX = 70

IntArray = np.ndarray[Any, np.dtype[np.int64]]


def _buckets_by_seconds(size: int) -> Callable[[FloatArray], IntArray]:
    def key(starts: FloatArray) -> IntArray:
        return ((starts + _IST_OFFSET) // size).astype(np.int64)

    return key


def _buckets_by_months(size: int) -> Callable[[FloatArray], IntArray]:
    def key(starts: FloatArray) -> IntArray:
        months = (starts + _IST_OFFSET).astype("datetime64[s]").astype("datetime64[M]")
        return months.astype(np.int64) // size

    return key


def _intervals(daily: bool) -> list[tuple[float, Callable[[FloatArray], IntArray]]]:
    """(trading seconds per interval, bucket key) from the finest interval to the widest."""
    day = 86_400.0 if daily else float(_SESSION)
    out: list[tuple[float, Callable[[FloatArray], IntArray]]] = []
    if not daily:
        for size in (60, 120, 300, 600, 900, 1800, 3600, 7200):
            out.append((float(size), _buckets_by_seconds(size)))
    out.append((day, _buckets_by_seconds(86_400)))
    out.append((5 * day, _buckets_by_seconds(7 * 86_400)))
    for months in (1, 3, 6, 12, 24, 60):
        out.append((21 * months * day, _buckets_by_months(months)))
    return out


class TimeAxis(pg.AxisItem):  # type: ignore[misc]
    def __init__(self, series: BarSeries, **kwargs: Any) -> None:
        super().__init__(orientation="bottom", **kwargs)
        self.series = series
        self.timeframe = Timeframe.M1
        self._cache: tuple[tuple[object, ...], list[Any]] | None = None

    def tickValues(self, minVal: float, maxVal: float, size: float) -> list[Any]:
        # Asked twice per frame (this axis and the grid) with the same range; live updates
        # change neither the range nor the bar count, so the answer is usually cached.
        key = (minVal, maxVal, size, len(self.series), self.timeframe)
        if self._cache is None or self._cache[0] != key:
            self._cache = (key, self._tick_values(minVal, maxVal, size))
        return self._cache[1]

    def invalidate(self) -> None:
        self._cache = None

    def _tick_values(self, minVal: float, maxVal: float, size: float) -> list[Any]:
        n = len(self.series)
        span = maxVal - minVal
        if n == 0 or span <= 0 or size <= 0:
            return []
        px_per_bar = size / span
        daily = self.timeframe is Timeframe.D1
        bar_seconds = 86_400 if daily else self.timeframe.seconds
        intervals = _intervals(daily)
        key = intervals[-1][1]
        for seconds, candidate in intervals:
            if seconds / bar_seconds * px_per_bar >= _MIN_LABEL_PX:
                key = candidate
                break
        lo = max(0, int(np.ceil(minVal)))
        hi = min(n, int(np.floor(maxVal)) + 1)
        if hi <= lo:
            return []
        first = max(lo - 1, 0)
        buckets = key(self.series.column("start")[first:hi])
        changed = np.flatnonzero(buckets[1:] != buckets[:-1]) + first + 1
        if lo == 0:
            changed = np.concatenate(([0], changed))
        # Day buckets of the visible window only (index i is days[i - first]): over the whole
        # series this was most of a pan frame's axis time at 100,000 bars.
        days = _buckets_by_seconds(86_400)(self.series.column("start")[first:hi])
        ticks: list[int] = []
        for i in changed.tolist():
            if i < lo:
                continue
            # Sessions start at 09:15 and end at 15:30, so a day's first bar can crowd the round
            # hour either side of it; the date wins over the clock time.
            if ticks and (i - ticks[-1]) * px_per_bar < _MIN_LABEL_PX:
                starts_day = i == 0 or days[i - first] != days[i - 1 - first]
                prev = ticks[-1]
                prev_starts_day = prev == 0 or days[prev - first] != days[prev - 1 - first]
                if starts_day and not prev_starts_day:
                    ticks[-1] = i
                continue
            ticks.append(i)
        return [(1.0, [float(i) for i in ticks])]

    def tickStrings(self, values: list[float], scale: float, spacing: float) -> list[str]:
        starts = self.series.column("start")
        out: list[str] = []
        for v in values:
            i = round(v)
            if not 0 <= i < len(starts):
                out.append("")
                continue
            when = datetime.fromtimestamp(starts[i], IST)
            before = datetime.fromtimestamp(starts[i - 1], IST) if i > 0 else None
            out.append(self._label(when, before))
        return out

    def _label(self, when: datetime, before: datetime | None) -> str:
        """Clock time within a day, the date where a day starts, month and year above that."""
        if before is None or before.year != when.year:
            return when.strftime("%Y") if self.timeframe is Timeframe.D1 else when.strftime("%d %b")
        if before.month != when.month and self.timeframe is Timeframe.D1:
            return when.strftime("%b")
        if before.date() != when.date():
            return (
                when.strftime("%d %b")
                if self.timeframe is not Timeframe.D1
                else when.strftime("%d")
            )
        return when.strftime("%H:%M")
