"""Simulated market depth that is drawn per tick but built only when someone reads it.

Five levels a side cost ten ``DepthLevel`` records, ten ``Decimal`` prices and thirty random
draws: about two thirds of the simulator's time per tick, at 5,000 ticks/s some 12% of a
core on the UI loop, for books that almost nobody reads (the paper broker reads the depth of
instruments with working orders, the depth panel one instrument, the recorder what it
records). The tick keeps the touch (best bid and ask, in tick counts) and one draw of random
bits from the simulator's stream; ``bids`` and ``asks`` are decoded from them on first
access. The book is a pure function of the draw, so a run stays reproducible from its seed
whoever reads which book and when.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.domain import Depth, DepthLevel, LevelText

LEVELS = 5
_LOTS_BITS = 12
_ORDERS_BITS = 6
_GAP_BITS = 4
_LEVEL_BITS = _LOTS_BITS + _ORDERS_BITS + _GAP_BITS
BITS = 2 * LEVELS * _LEVEL_BITS  # random bits one book takes from the simulator's stream
_LOTS_MASK = (1 << _LOTS_BITS) - 1
_ORDERS_MASK = (1 << _ORDERS_BITS) - 1
_GAP_MASK = (1 << _GAP_BITS) - 1


def build_book(
    bits: int, bid: int, ask: int, tick: Decimal, lot: int, max_lots: int, gap_max: int
) -> tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]:
    """Decode one draw into five levels a side; a bid ladder that would reach zero (a 0.05
    option) stops short. Quantities are whole lots, orders at most one per lot."""
    sides: list[tuple[DepthLevel, ...]] = []
    for n, direction in ((bid, -1), (ask, 1)):
        levels: list[DepthLevel] = []
        for _ in range(LEVELS):
            if n < 1:
                break
            lots = 1 + ((bits & _LOTS_MASK) * max_lots >> _LOTS_BITS)
            bits >>= _LOTS_BITS
            orders = 1 + ((bits & _ORDERS_MASK) * min(lots, 25) >> _ORDERS_BITS)
            bits >>= _ORDERS_BITS
            levels.append(DepthLevel(tick * n, lots * lot, min(orders, lots)))
            n += direction * (1 + ((bits & _GAP_MASK) * gap_max >> _GAP_BITS))
            bits >>= _GAP_BITS
        sides.append(tuple(levels))
    return sides[0], sides[1]


def book_texts(
    bits: int, bid: int, ask: int, tick: Decimal, lot: int, max_lots: int, gap_max: int
) -> tuple[list[LevelText], list[LevelText]]:
    """``build_book`` as (price text, quantity, orders) per level, from integers only.

    The recorder stores every simulated book as text; building ten ``DepthLevel`` records
    and ``Decimal`` prices first cost it some 13 us a tick. The text is ``str(tick * n)``
    exactly (tests/test_simulator_depth.py compares the two).
    """
    units, exponent = _scale(tick)
    cents = exponent == -2  # every simulated tick size today: the text inlined
    sides: list[list[LevelText]] = []
    for n, direction in ((bid, -1), (ask, 1)):
        levels: list[LevelText] = []
        for _ in range(LEVELS):
            if n < 1:
                break
            lots = 1 + ((bits & _LOTS_MASK) * max_lots >> _LOTS_BITS)
            bits >>= _LOTS_BITS
            orders = 1 + ((bits & _ORDERS_MASK) * (lots if lots < 25 else 25) >> _ORDERS_BITS)
            bits >>= _ORDERS_BITS
            if cents:
                whole, part = divmod(units * n, 100)
                price = f"{whole}.{part:02d}"
            else:
                price = _text(units * n, exponent)
            levels.append((price, lots * lot, orders if orders < lots else lots))
            n += direction * (1 + ((bits & _GAP_MASK) * gap_max >> _GAP_BITS))
            bits >>= _GAP_BITS
        sides.append(levels)
    return sides[0], sides[1]


_SCALES: dict[Decimal, tuple[int, int]] = {}


def _scale(tick: Decimal) -> tuple[int, int]:
    """A tick size as (integer coefficient, exponent): 0.05 is (5, -2)."""
    scale = _SCALES.get(tick)
    if scale is None:
        _sign, digits, exponent = tick.as_tuple()
        assert isinstance(exponent, int)  # a tick size is finite
        scale = _SCALES[tick] = (int("".join(map(str, digits))), exponent)
    return scale


def _text(units: int, exponent: int) -> str:
    """``str(Decimal((0, digits of units, exponent)))`` for a price (never scientific)."""
    if exponent == -2:
        whole, cents = divmod(units, 100)
        return f"{whole}.{cents:02d}"
    if exponent >= 0:
        return str(Decimal(units).scaleb(exponent))
    places = -exponent
    digits = str(units).rjust(places + 1, "0")
    return digits[:-places] + "." + digits[-places:]


class LazyDepth(Depth):
    """A ``Depth`` whose levels are decoded from ``spec`` when first read.

    It compares and hashes as the plain ``Depth`` with the same levels, and pickles as one.
    """

    __slots__ = ("_book", "_spec")
    _book: tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]] | None
    _spec: tuple[int, int, int, Decimal, int, int, int]

    def __init__(
        self, bits: int, bid: int, ask: int, tick: Decimal, lot: int, max_lots: int, gap_max: int
    ) -> None:
        object.__setattr__(self, "_spec", (bits, bid, ask, tick, lot, max_lots, gap_max))
        object.__setattr__(self, "_book", None)

    def _levels(self) -> tuple[tuple[DepthLevel, ...], tuple[DepthLevel, ...]]:
        book = self._book
        if book is None:
            book = build_book(*self._spec)
            object.__setattr__(self, "_book", book)
        return book

    @property
    def bids(self) -> tuple[DepthLevel, ...]:
        return self._levels()[0]

    @property
    def asks(self) -> tuple[DepthLevel, ...]:
        return self._levels()[1]

    def level_texts(self) -> tuple[list[LevelText], list[LevelText]]:
        if self._book is not None:  # already read: its levels are the cheaper way now
            return Depth.level_texts(self)
        return book_texts(*self._spec)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Depth):
            return NotImplemented
        return (self.bids, self.asks) == (other.bids, other.asks)

    def __hash__(self) -> int:
        return hash((self.bids, self.asks))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Depth, (self.bids, self.asks))
