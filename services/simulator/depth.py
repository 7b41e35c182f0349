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

from services.domain import Depth, DepthLevel

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

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Depth):
            return NotImplemented
        return (self.bids, self.asks) == (other.bids, other.asks)

    def __hash__(self) -> int:
        return hash((self.bids, self.asks))

    def __reduce__(self) -> tuple[Any, ...]:
        return (Depth, (self.bids, self.asks))
