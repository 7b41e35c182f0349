"""After every (re)connect, the broker's view of orders, trades and positions wins.

While the stream was down, orders may have filled, been cancelled by the exchange or been
placed from Kite's own app; their updates went nowhere. On each new connection we fetch the
broker's snapshots, compare them with what the order manager holds, write every difference
to the audit log (so a trader can see afterwards what the terminal had wrong and when), tell
the user through a ``ConnectionState`` on the bus, and then reload the order manager from the
broker (``resync``), so no stale local state survives.

The trigger is the feed's own ``CONNECTED`` state on the ``CONNECTION`` topic: the stream
numbers its connections in the detail ("connected (#3)"), so each new connection is seen
once even though that topic coalesces per component.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from services.broker import BrokerError
from services.brokers.ports import ExecutionClient
from services.bus import CONNECTION, EventBus
from services.clock import Clock
from services.domain import ConnectionState, ConnectionStatus, Fill, Order, Position, Product

log = logging.getLogger(__name__)

AuditFn = Callable[[str, str, Mapping[str, Any]], None]
DIFFERENCE = "reconcile.difference"
ACTOR = "reconcile"


class OrderBook(Protocol):
    """What the reconciler needs of the order manager."""

    def orders(self) -> list[Order]: ...

    def fills(self) -> list[Fill]: ...

    def positions(self) -> list[Position]: ...

    def apply_broker_update(self, order: Order) -> None: ...

    async def resync(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Difference:
    kind: str  # order.status, order.unknown_locally, order.missing_at_broker, fill.missed, ...
    subject: str  # order id, fill id or instrument key/product
    ours: str
    broker: str

    def describe(self) -> str:
        return f"{self.kind} {self.subject}: ours {self.ours}, broker {self.broker}"


@dataclass(frozen=True, slots=True)
class ReconcileReport:
    at: datetime
    differences: tuple[Difference, ...] = ()
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    def summary(self) -> str:
        if self.error is not None:
            return f"reconciliation failed: {self.error}"
        if not self.differences:
            return "in sync with the broker"
        shown = "; ".join(d.describe() for d in self.differences[:3])
        more = len(self.differences) - 3
        return (
            f"{len(self.differences)} difference(s) with the broker, broker's view applied: "
            f"{shown}{f' (+{more} more)' if more > 0 else ''}"
        )


def _order_state(order: Order) -> str:
    return f"{order.status.value} filled {order.filled_quantity}/{order.quantity}"


def compare(
    ours_orders: list[Order],
    ours_fills: list[Fill],
    ours_positions: list[Position],
    orders: list[Order],
    fills: list[Fill],
    positions: list[Position],
) -> list[Difference]:
    """Every way our snapshots differ from the broker's, in a stable order."""
    diffs: list[Difference] = []
    mine = {o.order_id: o for o in ours_orders}
    theirs = {o.order_id: o for o in orders}
    for order_id, order in theirs.items():
        local = mine.get(order_id)
        if local is None:
            diffs.append(Difference("order.unknown_locally", order_id, "none", _order_state(order)))
        elif (local.status, local.filled_quantity) != (order.status, order.filled_quantity):
            diffs.append(
                Difference("order.status", order_id, _order_state(local), _order_state(order))
            )
    for order_id, local in mine.items():
        if order_id not in theirs and local.status.is_working:
            diffs.append(
                Difference("order.missing_at_broker", order_id, _order_state(local), "none")
            )
    known_fills = {f.fill_id for f in ours_fills}
    for fill in fills:
        if fill.fill_id not in known_fills:
            diffs.append(
                Difference(
                    "fill.missed",
                    fill.fill_id,
                    "none",
                    f"{fill.side.value} {fill.quantity} {fill.key} @ {fill.price}",
                )
            )
    mine_pos: dict[tuple[str, Product], int] = {
        (p.key, p.product): p.quantity for p in ours_positions
    }
    theirs_pos: dict[tuple[str, Product], int] = {(p.key, p.product): p.quantity for p in positions}
    for slot in sorted(mine_pos.keys() | theirs_pos.keys()):
        a, b = mine_pos.get(slot, 0), theirs_pos.get(slot, 0)
        if a != b:
            diffs.append(
                Difference("position.quantity", f"{slot[0]} {slot[1].value}", str(a), str(b))
            )
    return diffs


@dataclass
class Reconciler:
    """Compare and apply the broker's view; ``run`` does it on each new feed connection.

    ``after`` hooks run after each successful reconciliation (the candle gap repair).
    """

    broker: ExecutionClient
    book: OrderBook
    bus: EventBus
    clock: Clock
    audit: AuditFn | None = None
    feed_component: str = "feed:kite"
    notice_component: str = "reconcile:broker"
    after: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    reports: list[ReconcileReport] = field(default_factory=list)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock)

    def __post_init__(self) -> None:
        # Subscribed now, not in run(), so the first CONNECTED is not missed.
        self._sub = self.bus.subscribe(CONNECTION, "reconciler")

    async def reconcile(self) -> ReconcileReport:
        async with self._lock:
            report = await self._reconcile()
        self.reports.append(report)
        del self.reports[:-20]
        self._notify(report)
        return report

    async def _reconcile(self) -> ReconcileReport:
        now = self.clock.now()
        try:
            orders = await self.broker.orders()
            fills = await self.broker.fills()
            positions = await self.broker.positions()
        except BrokerError as exc:
            log.warning("reconciliation could not read the broker: %s", exc)
            return ReconcileReport(now, error=str(exc))
        diffs = compare(
            self.book.orders(), self.book.fills(), self.book.positions(), orders, fills, positions
        )
        for diff in diffs:
            log.warning("reconcile: %s", diff.describe())
            if self.audit is not None:
                self.audit(
                    DIFFERENCE,
                    ACTOR,
                    {"kind": diff.kind, "subject": diff.subject, "ours": diff.ours,
                     "broker": diff.broker},
                )  # fmt: skip
        try:
            if diffs:
                await self.book.resync()
        except BrokerError as exc:
            # The comparison stands; apply what we already hold so the orders at least agree.
            log.warning("reconciliation resync failed, applying the order book only: %s", exc)
            for order in orders:
                self.book.apply_broker_update(order)
        return ReconcileReport(now, tuple(diffs))

    def _notify(self, report: ReconcileReport) -> None:
        status = ConnectionStatus.CONNECTED if report.ok else ConnectionStatus.DISCONNECTED
        self.bus.publish(
            CONNECTION,
            ConnectionState(self.notice_component, status, report.summary(), ts=report.at),
        )

    async def run(self) -> None:
        """Reconcile (then run the ``after`` hooks) on every new connection of the feed."""
        sub = self._sub
        seen: str | None = None
        try:
            while True:
                for state in await sub.next_batch():
                    if state.component != self.feed_component:
                        continue
                    if state.status is not ConnectionStatus.CONNECTED:
                        seen = None
                        continue
                    if state.detail == seen:
                        continue
                    seen = state.detail
                    report = await self.reconcile()
                    if report.ok:
                        for hook in self.after:
                            try:
                                await hook()
                            except Exception:
                                log.exception("post-reconnect hook failed")
        finally:
            sub.close()
