"""Snapshot quotes from data providers (NSE's website, Yahoo): delayed, and marked so.

A ``Snapshot`` is not a ``Tick``: it never enters the tick topic, the quote book, the bar
builder or the paper broker, so it cannot price an order or a market-protection band (those
read the live feed only). ``require_live`` is the guard for any code that is handed a price
of unknown origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal


class DelayedPrice(ValueError):
    """A delayed snapshot offered where only a live price will do."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    key: str
    last_price: Decimal
    ts: datetime  # the exchange time the provider says the price is from
    source: str
    delayed: bool = True

    def age(self, now: datetime) -> float:
        return max(0.0, (now - self.ts).total_seconds())

    def label(self, now: datetime) -> str:
        """How a view shows it: the price with "delayed" and its age, never bare."""
        if not self.delayed:
            return f"{self.last_price}"
        return f"{self.last_price} (delayed {self.age(now) / 60:.0f} min, {self.source})"


def require_live(price: Snapshot | Decimal, purpose: str) -> Decimal:
    """The price, if it may be used for ``purpose`` (an order, a protection band)."""
    if isinstance(price, Snapshot):
        if price.delayed:
            raise DelayedPrice(f"a delayed {price.source} quote cannot be used for {purpose}; "
                               "wait for the live feed")
        return price.last_price
    return price
