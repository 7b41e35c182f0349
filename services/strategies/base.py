"""The strategy interface: bars and fills in, order requests out.

Strategies are synchronous and pure over what they are shown: no clock reads, no I/O, so the
same bars give the same orders in a backtest and live. ``StrategyContext`` is what they may
ask about the account (net position, the time of the bar being handled).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from services.domain import Bar, Fill, OrderRequest, Timeframe


class StrategyContext(Protocol):
    def position(self, key: str) -> int:
        """Net quantity held in ``key`` under the strategy's product (signed)."""
        ...

    def now(self) -> datetime: ...


class Strategy(Protocol):
    name: str
    timeframe: Timeframe

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> Sequence[OrderRequest]:
        """Called once per *closed* bar of ``timeframe``; return orders to send now."""
        ...

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[OrderRequest]:
        """Called for each fill of an order this strategy sent."""
        ...
