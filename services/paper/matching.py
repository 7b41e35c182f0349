"""Fill logic of the paper broker: how much of a tick's visible book an order may take.

A paper fill is only believable if someone on the other side showed that quantity at that
price. So fills come from the tick's ``Depth`` and nowhere else (never from the last price
dressed up as bid and ask), and the visible quantity of one tick is consumed once: two paper
orders on the same tick cannot both take the same 50 shares offered at the touch.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from services.domain import Depth, Side


@dataclass(slots=True)
class _Level:
    price: Decimal
    left: int


@dataclass(frozen=True, slots=True)
class Take:
    """One slice of a fill: ``quantity`` taken at ``price`` from one depth level."""

    price: Decimal
    quantity: int


class TickBook:
    """The visible quantity of one tick's depth, shared by every paper order on that tick."""

    def __init__(self, depth: Depth) -> None:
        # A buy takes offers (asks), a sell hits bids; both lists are best first.
        self._levels: dict[Side, list[_Level]] = {
            Side.BUY: [_Level(lvl.price, lvl.quantity) for lvl in depth.asks if lvl.quantity > 0],
            Side.SELL: [_Level(lvl.price, lvl.quantity) for lvl in depth.bids if lvl.quantity > 0],
        }

    def available(self, side: Side) -> int:
        """Quantity still takeable by an order on ``side`` (any price)."""
        return sum(level.left for level in self._levels[side])

    def take(
        self,
        side: Side,
        quantity: int,
        limit: Decimal | None = None,
        *,
        touch_only: bool = False,
    ) -> list[Take]:
        """Take up to ``quantity`` for an order on ``side``, best price first.

        ``limit`` stops the walk at the first level worse than the limit, so a limit order
        never fills at a worse price. ``touch_only`` restricts a resting order to the best
        level of the snapshot: a resting order is met by the flow at the touch, it does not
        sweep the book the way an arriving marketable order does.
        """
        takes: list[Take] = []
        levels = self._levels[side]
        if touch_only:
            levels = levels[:1]
        remaining = quantity
        for level in levels:
            if remaining <= 0:
                break
            if limit is not None and not price_ok(side, level.price, limit):
                break
            qty = min(level.left, remaining)
            if qty <= 0:
                continue
            level.left -= qty
            remaining -= qty
            takes.append(Take(level.price, qty))
        return takes


def price_ok(side: Side, price: Decimal, limit: Decimal) -> bool:
    """True when ``price`` is at or better than ``limit`` for an order on ``side``."""
    return price <= limit if side is Side.BUY else price >= limit


def trigger_touched(side: Side, last_price: Decimal, trigger: Decimal) -> bool:
    """A stop-loss buy fires when the market trades up to its trigger, a sell when down to it."""
    return last_price >= trigger if side is Side.BUY else last_price <= trigger
