"""Building ``Tick``, ``Depth`` and ``DepthLevel`` on the decoders' hot paths.

Frozen slotted dataclasses build themselves through ``object.__setattr__`` once per field,
which made construction most of a full-depth packet's decode time. These builders write the
same slots directly (no validation is skipped: the dataclasses have none), about twice as
fast. The Kite, Upstox and Angel One decoders share them. They must set every field of the
class: the field list is checked against the class at import, and a test compares the
results with the normal constructors, so a new field in a domain type cannot be missed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.domain import Depth, DepthLevel, Tick

new = object.__new__


def setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    """The slot's own ``__set__``: what ``object.__setattr__`` ends up calling."""
    set_slot: Callable[[Any, Any], None] = cls.__dict__[name].__set__
    return set_slot


set_level_price, set_level_quantity, set_level_orders = (
    setter(DepthLevel, n) for n in ("price", "quantity", "orders")
)
set_bids, set_asks = (setter(Depth, n) for n in ("bids", "asks"))
_TICK_FIELDS = (
    "key", "ts", "last_price", "last_quantity", "volume", "open", "high", "low", "close",
    "depth", "oi", "oi_close",
)  # fmt: skip
assert tuple(Tick.__slots__) == _TICK_FIELDS, "Tick changed: update services.brokers.fast_build"
assert tuple(DepthLevel.__slots__) == ("price", "quantity", "orders"), "DepthLevel changed"
assert tuple(Depth.__slots__) == ("bids", "asks"), "Depth changed"
(
    _t_key, _t_ts, _t_ltp, _t_ltq, _t_vol, _t_open, _t_high, _t_low, _t_close, _t_depth,
    _t_oi, _t_oi_close,
) = (setter(Tick, n) for n in _TICK_FIELDS)  # fmt: skip


def fast_level(price: Decimal, quantity: int, orders: int = 0) -> DepthLevel:
    level: DepthLevel = new(DepthLevel)
    set_level_price(level, price)
    set_level_quantity(level, quantity)
    set_level_orders(level, orders)
    return level


def fast_depth(bids: tuple[DepthLevel, ...], asks: tuple[DepthLevel, ...]) -> Depth:
    depth: Depth = new(Depth)
    set_bids(depth, bids)
    set_asks(depth, asks)
    return depth


def fast_tick(
    key: str,
    ts: datetime,
    last_price: Decimal,
    last_quantity: int,
    volume: int,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    depth: Depth | None,
    oi: int = 0,
) -> Tick:
    """``Tick(...)`` with ``oi_close`` 0: no feed sends the previous day's OI, so the option
    chain counts the change in OI from the first value it sees."""
    tick: Tick = new(Tick)
    _t_key(tick, key)
    _t_ts(tick, ts)
    _t_ltp(tick, last_price)
    _t_ltq(tick, last_quantity)
    _t_vol(tick, volume)
    _t_open(tick, open_)
    _t_high(tick, high)
    _t_low(tick, low)
    _t_close(tick, close)
    _t_depth(tick, depth)
    _t_oi(tick, oi)
    _t_oi_close(tick, 0)
    return tick


__all__ = ["fast_depth", "fast_level", "fast_tick", "new", "setter"]
