"""The desktop's journal does not hold an order to the node: the node makes the intent
durable itself (idempotency claim, journal) before its broker sees the order, so the
desktop's copy is written after the answer (the acknowledgement, or the intent when there
is none), not waited for, and not written while the node commits its own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path

from app.settings import NodeSettings, Settings
from app.wiring import AppServices, build_services
from services.apikeys import Scope
from services.brokers.errors import PermissionDenied
from services.brokers.node.execution import NodeExecution
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side
from services.risk.limits import RiskLimits
from services.storage import Database
from tests.api.server import Running, running_server
from tests.kite_app.conftest import MemorySecrets

OPEN = RiskLimits(max_orders_per_second=None, duplicate_window_seconds=None,
                  max_open_orders=None, equity_price_band_percent=None)  # fmt: skip


@contextlib.asynccontextmanager
async def _desktop_on_a_node(
    tmp_path: Path,
) -> AsyncIterator[tuple[Running, Database, AppServices]]:
    """An in-process node and a desktop on its own encrypted profile, sending orders there."""
    node_settings = Settings(ticks_per_second=20, models_enabled=False, risk=OPEN)
    async with running_server(settings=node_settings) as srv:
        token = srv.key(Scope.TRADE, Scope.READ)
        settings = Settings(models_enabled=False, risk=OPEN,
                            node=NodeSettings(venue="node", url=srv.base))  # fmt: skip
        with Database.open(tmp_path / "desktop.db", os.urandom(32), create=True) as db:
            services = build_services(settings, database=db,
                                      secrets=MemorySecrets({"node": {"api_key": token}}))
            services.bus.bind_loop(asyncio.get_running_loop())
            assert services.recorder is not None and services.node is not None
            try:
                yield srv, db, services
            finally:
                await services.node.execution.close()
                await services.recorder.close()


async def test_an_order_to_the_node_does_not_wait_for_the_desktops_journal(
    tmp_path: Path,
) -> None:
    async with _desktop_on_a_node(tmp_path) as (_node, db, services):
        assert services.recorder is not None
        release = threading.Event()
        held = asyncio.ensure_future(services.recorder.durable(release.wait))
        try:
            request = OrderRequest("NSE:RELIANCE", Side.BUY, 1, OrderType.LIMIT,
                                   Product.CNC, price=Decimal("100.00"))  # fmt: skip
            # The desktop's journal thread is busy; the order goes to the node anyway.
            order = await asyncio.wait_for(services.submit_order(request), 30)
            assert order.status is OrderStatus.OPEN and order.order_id != order.request.tag
            assert db.orders.all() == []  # nothing of it written here yet
        finally:
            release.set()
            await held
        await services.orders.settle_journal()
        # Then the node's acknowledgement: the one row of the order.
        stored = db.orders.all()
        assert [(o.order_id, o.request.tag) for o in stored] == [
            (order.order_id, order.request.tag)]
        assert "order_placed" in [row.kind for row in db.audit.rows()]
        assert services.orders.journal_errors == 0


async def test_an_order_the_node_did_not_answer_stays_in_the_desktops_journal(
    tmp_path: Path,
) -> None:
    """No answer, no acknowledgement to record: the intent is journaled instead (PENDING, by
    its tag), so a restart still knows of an order that may be at the node."""
    async with _desktop_on_a_node(tmp_path) as (srv, db, services):
        # The node gives no order back: this client's key may read, not trade.
        execution = NodeExecution(srv.base, srv.key(Scope.READ))
        await services.orders.use_venue(execution)
        request = OrderRequest("NSE:RELIANCE", Side.BUY, 1, OrderType.LIMIT,
                               Product.CNC, price=Decimal("100.00"))  # fmt: skip
        try:
            await asyncio.wait_for(services.submit_order(request), 30)
        except PermissionDenied as e:
            refusal = e
        else:
            raise AssertionError("the order must not be acknowledged")
        await services.orders.settle_journal()
        stored = db.orders.all()
        assert [(o.order_id, o.status) for o in stored] == [
            (stored[0].request.tag, OrderStatus.PENDING)], refusal
        assert "order_placed" not in [row.kind for row in db.audit.rows()]
        await execution.close()
