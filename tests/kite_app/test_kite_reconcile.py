"""After a reconnect the broker's view wins: a fill missed while the stream was down is
applied, audited and announced; missed 1-minute candles are repaired from Kite's history."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from app.wiring import AppServices, build_services
from services.brokers.kite.feed import COMPONENT
from services.bus import CONNECTION
from services.clock import ManualClock
from services.domain import (
    Bar,
    ConnectionState,
    ConnectionStatus,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Tick,
    Timeframe,
)
from services.reconcile import DIFFERENCE
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_wiring import NOW, secrets_for


async def kite_services(fake: FakeKite, clock: ManualClock) -> AppServices:
    services = build_services(kite_settings(fake), clock, secrets=secrets_for(fake))
    services.bus.bind_loop(asyncio.get_running_loop())
    assert services.kite is not None
    await services.kite.load_instruments()
    return services


async def wait_for(check: Any, within: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def test_fill_missed_while_disconnected_is_reconciled(fake: FakeKite) -> None:
    services = await kite_services(fake, ManualClock(NOW))
    reconciler = services.reconciler
    assert reconciler is not None
    audited: list[tuple[str, str, Mapping[str, Any]]] = []
    reconciler.audit = lambda kind, actor, details: audited.append((kind, actor, details))
    reconciler.after.clear()
    notices = services.bus.subscribe(CONNECTION, "test")
    task = asyncio.create_task(reconciler.run())
    try:
        connect = ConnectionState(COMPONENT, ConnectionStatus.CONNECTED, "connected (#1)")
        services.bus.publish(CONNECTION, connect)
        await wait_for(lambda: len(reconciler.reports) == 1)
        assert reconciler.reports[0].differences == ()

        order = await services.submit_order(
            OrderRequest(
                "NSE:INFY", Side.BUY, 4, OrderType.LIMIT, Product.CNC, price=Decimal("1570")
            )
        )
        # The stream drops; meanwhile the order fills at Kite and the update goes nowhere.
        services.bus.publish(
            CONNECTION, ConnectionState(COMPONENT, ConnectionStatus.DISCONNECTED, "closed")
        )
        fake.fill(order.order_id)
        await asyncio.sleep(0.05)
        assert services.orders.order(order.order_id).status is OrderStatus.PENDING  # type: ignore[union-attr]
        services.bus.publish(
            CONNECTION, ConnectionState(COMPONENT, ConnectionStatus.CONNECTED, "connected (#2)")
        )
        await wait_for(lambda: len(reconciler.reports) == 2)
    finally:
        task.cancel()
    local = services.orders.order(order.order_id)
    assert local is not None and local.status is OrderStatus.FILLED
    assert local.filled_quantity == 4
    positions = {p.key: p.quantity for p in services.position_list()}
    assert positions["NSE:INFY"] == 4
    kinds = {d["kind"] for k, _, d in audited if k == DIFFERENCE}
    assert {"order.status", "fill.missed", "position.quantity"} <= kinds
    assert all(k == DIFFERENCE and actor == "reconcile" for k, actor, _ in audited)
    shown = [s for s in notices.drain() if s.component == "reconcile:zerodha"]
    assert shown and "difference" in shown[-1].detail
    assert services.funds() is not None  # funds came with the resync


async def test_broker_unreachable_is_reported_not_raised(fake: FakeKite) -> None:
    services = await kite_services(fake, ManualClock(NOW))
    assert services.reconciler is not None
    fake.inject("orders", "503")
    report = await services.reconciler.reconcile()
    assert not report.ok
    assert "cannot reach" in (report.error or "")
    assert report.summary().startswith("reconciliation failed")
    assert services.reconciler.reports[-1] is report


async def test_missed_candles_are_repaired_from_history(fake: FakeKite) -> None:
    clock = ManualClock(NOW)
    services = await kite_services(fake, clock)
    kite = services.kite
    assert kite is not None
    kite.watch(["NSE:INFY"])
    key = "NSE:INFY"

    def tick(at: datetime, price: str, volume: int) -> Tick:
        p = Decimal(price)
        return Tick(key, at, p, 1, volume, p, p, p, p)

    # Ticks until 10:02:30, then the feed is down until 10:09:10 when ticks resume.
    services.bars.on_ticks(
        [tick(NOW + timedelta(seconds=s), "1570", 100 + s) for s in range(0, 151, 10)]
    )
    services.bars.on_ticks([tick(NOW + timedelta(minutes=9, seconds=10), "1575", 900)])
    before = [b.start.minute for b in services.bars.bars(key, Timeframe.M1)]
    assert before == [0, 1, 2, 9]
    clock.set(NOW + timedelta(minutes=9, seconds=20))
    repaired = await kite.repair.repair()
    assert repaired[key] >= 6
    bars = services.bars.bars(key, Timeframe.M1)
    assert [b.start.minute for b in bars] == list(range(10))
    assert all(b.closed for b in bars[:-1]) and not bars[-1].closed  # live bar untouched
    by_minute: dict[int, Bar] = {b.start.minute: b for b in bars}
    assert by_minute[5].volume >= 1000  # the fake's candle, not one built from ticks
    assert by_minute[9].close == Decimal("1575")
    # The 5-minute bar the gap cut short is rebuilt from the repaired minutes.
    five = {b.start.minute: b for b in services.bars.bars(key, Timeframe.M5)}
    assert five[0].closed
    assert five[0].volume == sum(by_minute[m].volume for m in range(5))
    assert five[0].high == max(by_minute[m].high for m in range(5))
    assert not five[5].closed  # the live 5-minute bar is left to the ticks
    assert fake.journal.count("GET", "/instruments/historical/") == 1
