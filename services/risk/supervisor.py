"""Feeds the risk engine from the live session: P&L, order updates and stuck-order sweeps.

The engine answers pre-trade checks from memory; this task keeps that memory current. P&L is
re-evaluated whenever a position changes (ticks move unrealised P&L), so the daily loss limit
and the drawdown limit can halt trading on their own in the middle of a fast market.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from decimal import Decimal

from services.brokers.ports import ExecutionClient
from services.bus import ORDERS, POSITIONS, EventBus, SubscriberLagged
from services.domain import ZERO, Order, Position
from services.risk.engine import RiskEngine
from services.risk.stuck import ReconcileReport, StuckOrderMonitor

log = logging.getLogger(__name__)


class RiskSupervisor:
    def __init__(
        self,
        engine: RiskEngine,
        bus: EventBus,
        broker: ExecutionClient,
        stuck: StuckOrderMonitor,
        *,
        sweep_seconds: float = 5.0,
        on_stuck: Callable[[ReconcileReport], None] | None = None,
        on_refreshed: Callable[[Order], None] | None = None,
    ) -> None:
        self.engine = engine
        self.stuck = stuck
        self._broker = broker
        self._positions: dict[tuple[str, str], Position] = {}
        self._sweep_seconds = sweep_seconds
        self._on_stuck = on_stuck
        self._on_refreshed = on_refreshed
        self._position_sub = bus.subscribe(POSITIONS, "risk-supervisor")
        self._order_sub = bus.subscribe(ORDERS, "risk-supervisor", lossless=True)
        self.last_report: ReconcileReport | None = None

    def use_broker(self, broker: ExecutionClient, positions: Sequence[Position]) -> None:
        """Watch ``broker`` from now on (the venue was switched): its positions, and none of
        the old venue's orders, which the new one cannot report on."""
        self._broker = broker
        self.stuck.forget_all()
        self.seed(positions)

    def seed(self, positions: Sequence[Position]) -> None:
        """Start from the broker's positions (after a restart or a resync)."""
        self._positions = {(p.key, p.product): p for p in positions}

    def total_pnl(self) -> Decimal:
        """Net of charges: the daily-loss limit guards the money the trader really lost."""
        return sum((p.net_pnl for p in self._positions.values()), ZERO)

    async def run(self) -> None:
        async with asyncio.TaskGroup() as group:
            group.create_task(self._follow_positions())
            group.create_task(self._follow_orders())
            group.create_task(self._sweep())

    async def _follow_positions(self) -> None:
        while True:
            for position in await self._position_sub.next_batch():
                self._positions[(position.key, position.product)] = position
            self.engine.on_pnl(self.total_pnl())

    async def _follow_orders(self) -> None:
        while True:
            try:
                batch = await self._order_sub.next_batch()
            except SubscriberLagged:
                log.warning("risk supervisor lagged on order updates")
                continue
            for order in batch:
                self.stuck.on_order_update(order)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(self._sweep_seconds)
            if not self.stuck.stuck():
                continue
            report = await self.stuck.reconcile(self._broker, on_refreshed=self._on_refreshed)
            self.last_report = report
            if report.missing or report.error:
                log.warning(
                    "stuck orders: %d missing at the broker%s",
                    len(report.missing),
                    f" ({report.error})" if report.error else "",
                )
            if self._on_stuck is not None:
                self._on_stuck(report)

    def close(self) -> None:
        self._position_sub.close()
        self._order_sub.close()
