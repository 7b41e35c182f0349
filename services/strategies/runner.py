"""Runs one strategy on the terminal's order path, live (from the bus) or in a backtest.

The runner is the only bridge between a strategy and the order manager: it numbers the
strategy's orders with deterministic tags, submits them through ``OrderManager.submit``
(validation, the risk checks, the journal, the broker), routes the strategy's own fills back
to it, and keeps the refusals so a backtest reports them instead of hiding them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from services.broker import OrderRejected
from services.bus import BARS, FILLS, EventBus, SubscriberLagged
from services.clock import Clock
from services.domain import Bar, Fill, Order, OrderRequest, Product
from services.orders import OrderManager
from services.strategies.base import Strategy
from services.validation import OrderValidationError

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Refusal:
    at: datetime
    request: OrderRequest
    reason: str


class _Context:
    def __init__(self, orders: OrderManager, clock: Clock, product: Product) -> None:
        self._orders = orders
        self._clock = clock
        self._product = product

    def position(self, key: str) -> int:
        for p in self._orders.positions():
            if p.key == key and p.product is self._product:
                return p.quantity
        return 0

    def now(self) -> datetime:
        return self._clock.now()


class StrategyRunner:
    def __init__(
        self,
        strategy: Strategy,
        orders: OrderManager,
        clock: Clock,
        *,
        keys: Sequence[str] = (),
        product: Product = Product.MIS,
        tag_prefix: str = "ST",
    ) -> None:
        self.strategy = strategy
        self._orders = orders
        self._clock = clock
        self._keys = frozenset(keys)
        self._ctx = _Context(orders, clock, getattr(strategy, "product", product))
        self._prefix = tag_prefix
        self._seq = 0
        self._mine: set[str] = set()
        self.placed: list[Order] = []
        self.refusals: list[Refusal] = []

    async def on_bar(self, bar: Bar) -> None:
        requests = self.decide(bar)
        if requests:
            await self.submit(requests)

    def decide(self, bar: Bar) -> Sequence[OrderRequest]:
        """What the strategy wants to send on ``bar`` (nothing for bars it does not follow)."""
        if not bar.closed or bar.timeframe is not self.strategy.timeframe:
            return ()
        if self._keys and bar.key not in self._keys:
            return ()
        return self.strategy.on_bar(bar, self._ctx)

    async def submit(self, requests: Sequence[OrderRequest]) -> None:
        await self._send(requests)

    async def on_fill(self, fill: Fill) -> None:
        if fill.order_id in self._mine:
            await self._send(self.strategy.on_fill(fill, self._ctx))

    async def _send(self, requests: Sequence[OrderRequest]) -> None:
        for request in requests:
            self._seq += 1
            tagged = replace(
                request,
                tag=f"{self._prefix}{self._seq:010d}",
                source=f"strategy:{self.strategy.name}",
            )
            try:
                order = await self._orders.submit(tagged)
            except (OrderRejected, OrderValidationError) as e:
                self.refusals.append(Refusal(self._clock.now(), tagged, str(e)))
                continue
            self._mine.add(order.order_id)
            self.placed.append(order)

    async def run(self, bus: EventBus) -> None:
        """Live: follow closed bars and fills on the bus until cancelled."""
        bars = bus.subscribe(BARS, f"strategy:{self.strategy.name}", lossless=True)
        fills = bus.subscribe(FILLS, f"strategy:{self.strategy.name}:fills", lossless=True)
        try:
            while True:
                try:
                    batch = await bars.next_batch()
                except SubscriberLagged:
                    log.warning("strategy %s fell behind the bars", self.strategy.name)
                    continue
                for bar in batch:
                    await self.on_bar(bar)
                for fill in fills.drain():
                    await self.on_fill(fill)
        finally:
            bars.close()
            fills.close()
