"""Stuck orders: working orders the broker has gone quiet about.

An order that stays open with no update for longer than the threshold may be resting
normally, or its updates may have been lost (a dropped socket, an adapter bug); the trader
cannot tell which, so it is surfaced and then reconciled against the broker's order book,
which is the source of truth. An order the broker confirms as still working is not stuck any
more (we know its state); one the broker no longer knows is reported as missing.

Time is the monitor's own clock at receipt, not the broker's ``updated_at``: broker clocks
drift and some adapters stamp updates with the order's placement time.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.brokers.ports import ExecutionClient
from services.clock import Clock
from services.domain import Order


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    refreshed: tuple[Order, ...]  # stuck orders with the broker's current version
    missing: tuple[Order, ...]  # stuck orders the broker does not list
    error: str | None = None  # why the broker could not be asked, if it could not


class StuckOrderMonitor:
    def __init__(
        self, threshold_seconds: float, clock: Clock, *, reconcile_timeout: float = 5.0
    ) -> None:
        if threshold_seconds <= 0:
            raise ValueError("threshold_seconds must be positive")
        self.threshold = timedelta(seconds=threshold_seconds)
        self.reconcile_timeout = reconcile_timeout
        self._clock = clock
        self._orders: dict[str, tuple[Order, datetime]] = {}

    def forget_all(self) -> None:
        """Stop watching every order (the venue that could report on them was switched)."""
        self._orders.clear()

    def on_order_update(self, order: Order) -> None:
        """Record a broker update; terminal orders stop being watched."""
        if order.status.is_terminal:
            self._orders.pop(order.order_id, None)
        else:
            self._orders[order.order_id] = (order, self._clock.now())

    def watched(self) -> int:
        return len(self._orders)

    def last_update(self, order_id: str) -> datetime | None:
        entry = self._orders.get(order_id)
        return entry[1] if entry else None

    def stuck(self, now: datetime | None = None) -> list[Order]:
        """Working orders without an update for more than the threshold, oldest first."""
        at = now if now is not None else self._clock.now()
        late = [(seen, o) for o, seen in self._orders.values() if at - seen > self.threshold]
        late.sort(key=lambda pair: pair[0])
        return [o for _, o in late]

    async def reconcile(
        self,
        broker: ExecutionClient,
        *,
        on_refreshed: Callable[[Order], None] | None = None,
    ) -> ReconcileReport:
        """Ask the broker for its order book and refresh every stuck order from it.

        ``on_refreshed`` receives each broker version so the order manager can apply it.
        """
        stale = self.stuck()
        if not stale:
            return ReconcileReport((), ())
        try:
            book = await asyncio.wait_for(broker.orders(), self.reconcile_timeout)
        except Exception as exc:
            reason = "timed out" if isinstance(exc, TimeoutError) else str(exc) or repr(exc)
            return ReconcileReport((), (), error=reason)
        by_id = {o.order_id: o for o in book}
        refreshed: list[Order] = []
        missing: list[Order] = []
        for order in stale:
            current = by_id.get(order.order_id)
            if current is None:
                missing.append(order)
                continue
            self.on_order_update(current)
            refreshed.append(current)
            if on_refreshed is not None:
                on_refreshed(current)
        return ReconcileReport(tuple(refreshed), tuple(missing))
