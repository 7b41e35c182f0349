"""The bar builder's closed bars of one instrument and timeframe, packed into arrays.

The builder keeps today's closed bars of every instrument that ticks, in five timeframes, so
a chart opened later starts from them. As ``Bar`` records (four ``Decimal`` prices, an aware
``datetime``) that is about 500 bytes a bar: with the simulator's 4,000 instruments the
desktop grew by 1-4 MB a minute all session (``bench/bench_memory.py``, tracemalloc). Packed,
a bar takes about 50 bytes: its start as epoch seconds, each price as a float with its decimal
exponent, the volume. Decoding is exact: a price is stored only when its float's shortest
repr reads back as the same number (any price with up to 15 significant digits does), and
the exponent restores its trailing zeros; a series that meets a price that does not
round-trip keeps ``Bar`` records from then on.

Packing costs tens of microseconds a bar, and a minute boundary closes a bar for every
instrument at once; so a closed bar waits as a record in the series' tail and ``pack`` is
called with a small budget per tick batch (``BarBuilder``), spreading the work over seconds.
"""

from __future__ import annotations

from array import array
from collections import deque
from collections.abc import Iterable, Iterator
from datetime import datetime, tzinfo
from decimal import Decimal

from services.clock import IST
from services.domain import Bar, Timeframe

_FIELDS = ("open", "high", "low", "close")


def _encode(price: Decimal) -> tuple[float, int] | None:
    exponent = price.as_tuple().exponent
    if not isinstance(exponent, int) or not -30 < exponent < 30:
        return None  # NaN, infinity or an absurd scale: not a price to pack
    value = float(price)
    return (value, exponent) if Decimal(repr(value)) == price else None


def _decode(value: float, exponent: int) -> Decimal:
    price = Decimal(repr(value))
    if price.as_tuple().exponent != exponent:
        price = price.quantize(Decimal((0, (1,), exponent)))
    return price


class ClosedBars:
    """Closed bars oldest first, at most ``maxlen`` (the oldest drop off, as a deque's)."""

    __slots__ = (
        "_closed",
        "_exponents",
        "_key",
        "_maxlen",
        "_objects",
        "_prices",
        "_starts",
        "_tail",
        "_timeframe",
        "_tz",
        "_volumes",
        "queued",
    )

    def __init__(self, key: str, timeframe: Timeframe, maxlen: int) -> None:
        self._key = key
        self._timeframe = timeframe
        self._maxlen = maxlen
        self._tz: tzinfo = IST
        self._starts = array("d")
        self._prices = array("d")  # four per bar: open, high, low, close
        self._exponents = array("b")
        self._volumes = array("q")
        self._closed = array("b")
        self._objects: deque[Bar] | None = None  # after a price that does not pack
        self._tail: list[Bar] = []  # closed bars not packed yet, oldest first
        self.queued = False  # waiting in the builder's packing queue

    def __len__(self) -> int:
        packed = len(self._objects) if self._objects is not None else len(self._starts)
        return packed + len(self._tail)

    def __bool__(self) -> bool:
        return len(self) > 0

    @property
    def unpacked(self) -> int:
        return len(self._tail)

    def last_start(self) -> datetime | None:
        if self._tail:
            return self._tail[-1].start
        if self._objects is not None:
            return self._objects[-1].start if self._objects else None
        if not self._starts:
            return None
        return datetime.fromtimestamp(self._starts[-1], self._tz)

    def append(self, bar: Bar) -> None:
        """Add a closed bar (packed later, by ``pack``)."""
        self._tail.append(bar)
        if len(self) > self._maxlen:
            self._drop_oldest()

    def _drop_oldest(self) -> None:
        if self._objects is not None and self._objects:
            self._objects.popleft()
        elif self._objects is None and self._starts:
            del self._starts[0], self._volumes[0], self._closed[0]
            del self._prices[:4], self._exponents[:4]
        else:
            del self._tail[0]

    def pack(self, limit: int) -> int:
        """Pack up to ``limit`` bars of the tail; return how many were packed."""
        n = min(limit, len(self._tail))
        for bar in self._tail[:n]:
            self._pack_one(bar)
        del self._tail[:n]
        return n

    def _pack_one(self, bar: Bar) -> None:
        if self._objects is not None:
            self._objects.append(bar)
            return
        packed = [_encode(getattr(bar, name)) for name in _FIELDS]
        if any(p is None for p in packed) or not -(2**63) <= bar.volume < 2**63:
            tail, self._tail = self._tail, []
            self._objects = deque(self, maxlen=self._maxlen)  # the packed bars, as records
            self._tail = tail
            self._objects.append(bar)
            self._starts, self._prices, self._exponents = array("d"), array("d"), array("b")
            self._volumes, self._closed = array("q"), array("b")
            return
        if bar.start.tzinfo is not None:
            self._tz = bar.start.tzinfo
        self._starts.append(bar.start.timestamp())
        for p in packed:
            assert p is not None
            self._prices.append(p[0])
            self._exponents.append(p[1])
        self._volumes.append(bar.volume)
        self._closed.append(1 if bar.closed else 0)

    def extend(self, bars: Iterable[Bar]) -> None:
        for bar in bars:
            self.append(bar)

    def clear(self) -> None:
        self._objects = None
        self._tail = []
        self._starts, self._prices, self._exponents = array("d"), array("d"), array("b")
        self._volumes, self._closed = array("q"), array("b")

    def __iter__(self) -> Iterator[Bar]:
        tail = list(self._tail)
        if self._objects is not None:
            yield from list(self._objects)
            yield from tail
            return
        prices, exponents, tz = self._prices, self._exponents, self._tz
        key, timeframe = self._key, self._timeframe
        for i, start in enumerate(self._starts):
            j = 4 * i
            o, h, lo, c = (_decode(prices[j + f], exponents[j + f]) for f in range(4))
            yield Bar(
                key, timeframe, datetime.fromtimestamp(start, tz), o, h, lo, c,
                self._volumes[i], bool(self._closed[i]),
            )  # fmt: skip
        yield from tail
