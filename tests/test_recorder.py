"""The order path writes to the real encrypted database before the broker sees an order."""

from __future__ import annotations

import asyncio
import contextlib
import os
from decimal import Decimal
from pathlib import Path

import pytest

from services.broker import OrderRejected
from services.bus import TICKS
from services.domain import Instrument, Order, OrderRequest, OrderStatus, OrderType, Product, Side
from services.orders import OrderManager
from services.recorder import Recorder
from services.security.audit import AuditLog
from services.storage import Database
from tests.test_order_manager import Env
from tests.test_paper_broker import REL, make_tick, req


@pytest.fixture
def db(tmp_path: Path) -> Database:
    database = Database.open(tmp_path / "terminal.db", os.urandom(32), create=True)
    yield database
    database.close()


async def test_order_is_journaled_before_sending_and_replaced_by_the_ack(db: Database) -> None:
    env = Env()
    recorder = Recorder(db, env.bus, record_ticks=False)
    seen_in_db_when_sent: list[list[str]] = []
    place = env.broker.place_order

    async def spying_place(request: OrderRequest) -> Order:
        seen_in_db_when_sent.append([o.status for o in db.orders.all()])
        return await place(request)

    env.broker.place_order = spying_place  # type: ignore[method-assign]
    env.manager.journal = recorder
    order = await env.manager.submit(req(REL, Side.BUY, 5, OrderType.LIMIT, price="2400.00"))

    assert seen_in_db_when_sent == [[OrderStatus.PENDING]]  # durable intent, before the broker
    # The answer did not wait for the acknowledgement's commit; it is queued behind it.
    assert [o.status for o in db.orders.all()] == [OrderStatus.PENDING]
    await env.manager.settle_journal()
    stored = db.orders.all()
    assert [(o.order_id, o.status) for o in stored] == [(order.order_id, OrderStatus.OPEN)]
    assert stored[0].request.tag == order.request.tag and order.request.tag.startswith("dt")
    kinds = [row.kind for row in db.audit.rows()]
    assert kinds == ["order_placed"]
    assert AuditLog(db).verify() is None
    await recorder.close()


async def test_a_journal_failure_stops_the_order_before_the_broker(db: Database) -> None:
    env = Env()
    recorder = Recorder(db, env.bus, record_ticks=False)
    env.manager.journal = recorder
    db.close()  # the disk is gone
    with pytest.raises(Exception):  # noqa: B017 - whatever the driver raises
        await env.manager.submit(req(REL, Side.BUY, 5, OrderType.LIMIT, price="2400.00"))
    assert await env.broker.orders() == []
    await recorder.close()


async def test_risk_rejection_is_audited(db: Database) -> None:
    env = Env()
    recorder = Recorder(db, env.bus, record_ticks=False)
    env.manager.journal = recorder

    def no_orders(request: OrderRequest, instrument: Instrument) -> None:
        raise OrderRejected("max_open_orders: limit 0", rule="max_open_orders")

    env.manager.checks.append(no_orders)
    with pytest.raises(OrderRejected):
        await env.manager.submit(req(REL, Side.BUY, 5, OrderType.LIMIT, price="2400.00"))
    (row,) = db.audit.rows()
    assert row.kind == "risk_rejected" and '"rule":"max_open_orders"' in row.details
    await recorder.close()


async def test_recorder_follows_fills_order_updates_and_ticks(db: Database) -> None:
    env = Env()
    recorder = Recorder(db, env.bus, tick_batch=10, flush_seconds=0.01)
    env.manager.journal = recorder
    task = asyncio.create_task(recorder.run())
    def feed(ltp: str, bid: str, ask: str) -> None:
        env.clock.advance(0.5)
        env.quotes.prices[REL] = Decimal(ltp)
        tick = make_tick(REL, ltp, env.clock.now(), bids=[(bid, 100)], asks=[(ask, 100)])
        env.bus.publish(TICKS, tick)
        env.broker.on_tick(tick)

    feed("2400.00", "2399.95", "2400.05")
    order = await env.manager.submit(req(REL, Side.BUY, 5, OrderType.MARKET, Product.MIS))
    feed("2400.05", "2400.00", "2400.10")
    for _ in range(200):
        await asyncio.sleep(0.01)
        stored = db.orders.get(order.order_id)
        if stored is not None and stored.status is OrderStatus.FILLED and db.fills.all() \
                and len(db.ticks.latest(REL, 10)) == 2:  # ticks flush on their own timer
            break
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await recorder.close()
    stored = db.orders.get(order.order_id)
    assert stored is not None and stored.status is OrderStatus.FILLED
    (fill,) = db.fills.all()
    assert fill.order_id == order.order_id and fill.quantity == 5
    assert fill.price == Decimal("2400.10")  # the next tick's ask: fills never use a stale book
    assert len(db.ticks.latest(REL, 10)) == 2


def test_manager_accepts_the_recorder_as_its_journal(db: Database) -> None:
    env = Env()
    OrderManager(
        env.broker, env.instruments, env.quotes, env.bus, env.clock, journal=Recorder(db, env.bus)
    )


async def test_ticks_are_committed_within_the_flush_interval_without_a_shutdown(
    db: Database,
) -> None:
    """The crash window is the flush interval: ticks reach the file while the recorder runs,
    not only when it closes (a killed process never closes)."""
    env = Env()
    recorder = Recorder(db, env.bus, tick_batch=1_000_000, flush_seconds=0.05)
    task = asyncio.create_task(recorder.run())
    try:
        for i in range(30):
            env.clock.advance(0.1)
            env.bus.publish(TICKS, make_tick(REL, f"2400.{i:02d}", env.clock.now()))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 30
        while await asyncio.to_thread(db.ticks.count) < 30:
            assert loop.time() < deadline, "ticks not committed while running"
            await asyncio.sleep(0.02)
        assert recorder.tick_backlog() == 0 and recorder.ticks_written == 30
        assert [t.last_price for t in db.ticks.latest(REL, 2)] == [
            Decimal("2400.28"), Decimal("2400.29")
        ]
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await recorder.close()
