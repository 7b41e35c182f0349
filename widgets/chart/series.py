"""The chart's bar history as growable numpy columns.

Painting and auto-ranging slice these columns by bar index, so a live update touches one row
and an append is amortised O(1) (capacity doubles), instead of rebuilding Python objects per
tick. The ``Bar`` records are kept too: the read-out shows their exact Decimal prices.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum

import numpy as np

from services.domain import Bar
from widgets.chart.indicators import FloatArray


class Change(Enum):
    REPLACED = "replaced"  # the last bar got new values
    APPENDED = "appended"  # a newer bar started
    IGNORED = "ignored"  # older than the last bar: a late or reordered update


_COLUMNS = ("start", "open", "high", "low", "close", "volume")


class BarSeries:
    def __init__(self) -> None:
        self.bars: list[Bar] = []
        self.generation = 0  # bumped by ``replace``: caches over old rows are stale
        self._capacity = 0
        self._cols: dict[str, FloatArray] = {}
        self._alloc(256)

    def _alloc(self, capacity: int) -> None:
        n = len(self.bars)
        new = {name: np.zeros(capacity, dtype=np.float64) for name in (*_COLUMNS, "x")}
        for name, col in self._cols.items():
            new[name][:n] = col[:n]
        new["x"][:] = np.arange(capacity, dtype=np.float64)
        self._cols = new
        self._capacity = capacity

    def __len__(self) -> int:
        return len(self.bars)

    def column(self, name: str) -> FloatArray:
        """A view of the first ``len(self)`` values; valid until the next append."""
        return self._cols[name][: len(self.bars)]

    def replace(self, bars: Sequence[Bar]) -> None:
        ordered = sorted(bars, key=lambda b: b.start)
        self.generation += 1
        self.bars = []
        if len(ordered) > self._capacity:
            self._alloc(max(256, 2 * len(ordered)))
        self.bars = list(ordered)
        for name in _COLUMNS:
            col = self._cols[name]
            if name == "start":
                col[: len(ordered)] = [b.start.timestamp() for b in ordered]
            elif name == "volume":
                col[: len(ordered)] = [b.volume for b in ordered]
            else:
                col[: len(ordered)] = [float(getattr(b, name)) for b in ordered]

    def upsert(self, bar: Bar) -> Change:
        if self.bars:
            last = self.bars[-1]
            if bar.start == last.start:
                self.bars[-1] = bar
                self._write(len(self.bars) - 1, bar)
                return Change.REPLACED
            if bar.start < last.start:
                return Change.IGNORED
        if len(self.bars) == self._capacity:
            self._alloc(2 * self._capacity)
        self.bars.append(bar)
        self._write(len(self.bars) - 1, bar)
        return Change.APPENDED

    def _write(self, i: int, bar: Bar) -> None:
        c = self._cols
        c["start"][i] = bar.start.timestamp()
        c["open"][i] = float(bar.open)
        c["high"][i] = float(bar.high)
        c["low"][i] = float(bar.low)
        c["close"][i] = float(bar.close)
        c["volume"][i] = bar.volume

    def index_at(self, epoch_seconds: float) -> int | None:
        """The bar whose interval holds the time: the last one starting at or before it."""
        i = int(np.searchsorted(self.column("start"), epoch_seconds, side="right")) - 1
        return i if i >= 0 else None

    def visible_slice(self, left: float, right: float) -> slice:
        """Indices of bars whose x (their index) falls within [left - 1, right + 1]."""
        n = len(self.bars)
        lo = max(0, int(np.floor(left)))
        hi = min(n, int(np.ceil(right)) + 1)
        return slice(lo, max(lo, hi))
