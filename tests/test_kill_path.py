"""The kill switch through the real session: nothing slips past it, and its orders are journaled."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from app.settings import Settings
from app.wiring import AppServices, build_services
from services.broker import OrderChange, OrderNotFound, OrderRejected
from services.bus import CONNECTION
from services.domain import (
    AUTO_PROTECTION,
    ConnectionStatus,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)
from services.risk import RiskLimits, TradingState
from services.storage import Database

KEY = "NSE:SBIN"


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true after {seconds} s")


def services_with(db: Database | None, tmp_path: Path, **changes: object) -> AppServices:
    settings = Settings(ticks_per_second=1000, seed=5, always_open=True, models_enabled=False)
    return build_services(settings.model_copy(update=changes), database=db, state_dir=tmp_path)


async def test_an_order_in_flight_when_the_kill_switch_fires_never_reaches_the_broker(
    tmp_path: Path,
) -> None:
    db = Database.open(tmp_path / "t.db", os.urandom(32), create=True)
    services = services_with(db, tmp_path)
    await services.start()
    try:
        await until(lambda: services.quotes.last_price(KEY) is not None)
        assert services.recorder is not None
        release = asyncio.Event()
        record_intent = services.recorder.record_intent

        async def slow_intent(order: Order) -> None:  # the journal's fsync takes a while
            await record_intent(order)
            await release.wait()

        services.recorder.record_intent = slow_intent  # type: ignore[method-assign]
        racing = asyncio.create_task(
            services.submit_order(OrderRequest(KEY, Side.BUY, 1, OrderType.MARKET, Product.MIS))
        )
        await asyncio.sleep(0.05)
        services.recorder.record_intent = record_intent  # type: ignore[method-assign]
        kill = asyncio.create_task(services.kill(square_off=True))
        await asyncio.sleep(0.05)
        release.set()
        with pytest.raises(OrderRejected, match="HALTED"):
            await racing
        report = await kill
        assert report.state is TradingState.HALTED
        assert await services.broker.orders() == []  # the broker never saw it
        await until(lambda: any(o.status is OrderStatus.REJECTED for o in db.orders.all()))
    finally:
        await services.stop()
        db.close()


async def test_square_off_orders_are_journaled_with_their_own_tags_and_protection(
    tmp_path: Path,
) -> None:
    db = Database.open(tmp_path / "t.db", os.urandom(32), create=True)
    services = services_with(db, tmp_path)
    await services.start()
    try:
        await until(lambda: services.quotes.last_price(KEY) is not None)
        for product, quantity in ((Product.MIS, 4), (Product.CNC, 6)):
            await services.submit_order(
                OrderRequest(KEY, Side.BUY, quantity, OrderType.MARKET, product)
            )
        await until(lambda: sorted(p.quantity for p in services.position_list()) == [4, 6])
        report = await services.kill(square_off=True, reason="test")
        closed_orders = [o for c in report.closed for o in c.orders]
        assert len(closed_orders) == 2 and report.failed == ()
        tags = [o.request.tag for o in closed_orders]
        assert all(t and t.startswith("dt") for t in tags) and len(set(tags)) == len(tags)
        assert all(o.request.market_protection == AUTO_PROTECTION for o in closed_orders)
        await until(lambda: all(db.orders.get(o.order_id) for o in closed_orders))
        await until(lambda: "killswitch.report" in [row.kind for row in db.audit.rows()])
        kinds = [row.kind for row in db.audit.rows()]
        assert kinds.count("risk_exempt") == 2 and "order_placed" in kinds
    finally:
        await services.stop()
        db.close()


async def test_limits_come_from_the_settings_and_unknown_orders_are_not_modified(
    tmp_path: Path,
) -> None:
    services = services_with(None, tmp_path, risk=RiskLimits(max_order_quantity=3))
    await services.start()
    try:
        await until(lambda: services.quotes.last_price(KEY) is not None)
        with pytest.raises(OrderRejected, match="max_order_quantity"):
            await services.submit_order(
                OrderRequest(KEY, Side.BUY, 4, OrderType.MARKET, Product.MIS)
            )
        with pytest.raises(OrderNotFound):
            await services.modify_order("PA999999", OrderChange(quantity=1))
    finally:
        await services.stop()


async def test_a_quiet_order_the_broker_does_not_know_is_reported(tmp_path: Path) -> None:
    services = services_with(None, tmp_path, stuck_order_seconds=0.05)
    services.risk_supervisor._sweep_seconds = 0.05
    notices = services.bus.subscribe(CONNECTION, "test")
    await services.start()
    try:
        await until(lambda: services.quotes.last_price(KEY) is not None)
        price = services.quotes.last_price(KEY)
        assert price is not None
        order = await services.submit_order(
            OrderRequest(
                KEY,
                Side.BUY,
                1,
                OrderType.LIMIT,
                Product.MIS,
                price=(price * Decimal("0.95")).quantize(Decimal("1")),
            )
        )
        broker_orders = services.broker.orders

        async def book_without_it() -> list[Order]:  # the broker lost the order
            return [o for o in await broker_orders() if o.order_id != order.order_id]

        services.broker.orders = book_without_it  # type: ignore[method-assign]
        seen: list[str] = []

        def stuck_notice() -> bool:
            seen.extend(
                s.detail
                for s in notices.drain()
                if s.component == "risk:stuck-orders" and s.status is ConnectionStatus.DISCONNECTED
            )
            return any(order.order_id in d for d in seen)

        await until(stuck_notice, 5)
    finally:
        await services.stop()
