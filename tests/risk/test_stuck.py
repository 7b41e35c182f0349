from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.bus import EventBus
from services.domain import (
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper import PaperBroker
from services.risk import StuckOrderMonitor
from tests.risk.support import World


async def test_quiet_orders_are_stuck_until_reconciled(world: World) -> None:
    clock = world.clock
    instruments, refs = bundled_universe(date(2026, 1, 6))
    broker = PaperBroker(InstrumentRegistry(instruments), EventBus(), clock)
    inst = next(i for i in instruments if i.kind is InstrumentKind.EQUITY)
    price = (refs[inst.key].price * Decimal("0.9")).quantize(Decimal("0.05"))
    monitor = StuckOrderMonitor(30, clock)

    first = await broker.place_order(
        OrderRequest(inst.key, Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=price)
    )
    monitor.on_order_update(first)
    clock.advance(20)
    second = await broker.place_order(
        OrderRequest(inst.key, Side.BUY, 2, OrderType.LIMIT, Product.CNC, price=price)
    )
    monitor.on_order_update(second)

    clock.advance(10)
    assert monitor.stuck() == []  # exactly at the threshold: not yet
    clock.advance(0.001)
    assert monitor.stuck() == [first]

    # The broker cancelled the first order but the update was lost; it still lists it.
    await broker.cancel_order(first.order_id)
    clock.advance(25)
    assert [o.order_id for o in monitor.stuck()] == [first.order_id, second.order_id]
    applied: list[str] = []
    report = await monitor.reconcile(broker, on_refreshed=lambda o: applied.append(o.order_id))
    assert [o.status for o in report.refreshed] == [OrderStatus.CANCELLED, OrderStatus.OPEN]
    assert applied == [first.order_id, second.order_id]
    assert report.missing == () and report.error is None
    assert monitor.stuck() == []
    assert monitor.watched() == 1  # the cancelled order is no longer watched


async def test_orders_the_broker_does_not_know_are_reported_missing(world: World) -> None:
    broker = PaperBroker(InstrumentRegistry(), EventBus(), world.clock)
    monitor = StuckOrderMonitor(5, world.clock)
    now = world.clock.now()
    ghost = Order(
        "GHOST1",
        OrderRequest("NSE:INFY", Side.SELL, 1, OrderType.MARKET, Product.MIS),
        OrderStatus.PENDING,
        now,
        now,
    )
    monitor.on_order_update(ghost)
    world.clock.advance(6)
    report = await monitor.reconcile(broker)
    assert report.missing == (ghost,)
    assert monitor.stuck() == [ghost]  # still surfaced: nobody knows what happened to it
