"""A restart resumes the day's paper session from the encrypted journal: nothing is lost."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from app.settings import Settings
from app.wiring import AppServices, build_services
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from services.storage import Database

KEY = "NSE:INFY"


async def until(predicate: Callable[[], bool], seconds: float = 10.0) -> None:
    """Poll ``predicate`` on the running loop (the services move on between polls)."""
    for _ in range(int(seconds / 0.02)):
        if predicate():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"not true after {seconds} s")


def session(db: Database, state_dir: Path) -> AppServices:
    settings = Settings(ticks_per_second=1000, seed=3, always_open=True, models_enabled=False)
    return build_services(settings, database=db, state_dir=state_dir)


async def test_orders_fills_positions_and_funds_survive_a_restart(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "terminal.db", os.urandom(32), create=True)
    try:
        first = session(db, tmp_path)
        await first.start()
        # The quote book's price, which the risk checks bound a market order with (it
        # follows the simulator's own last tick by a loop turn).
        await until(lambda: first.quotes.last_price(KEY) is not None)
        bought = await first.submit_order(
            OrderRequest(KEY, Side.BUY, 7, OrderType.MARKET, Product.MIS)
        )
        tick = first.last_tick(KEY)
        assert tick is not None
        resting = await first.submit_order(
            OrderRequest(
                KEY, Side.BUY, 3, OrderType.LIMIT, Product.MIS,
                price=(tick.last_price * Decimal("0.9")).quantize(Decimal("1")),
            )
        )  # fmt: skip
        await until(lambda: (o := first.orders.order(bought.order_id)) is not None
                    and o.status is OrderStatus.FILLED)  # fmt: skip
        # A market order walks the book: when the best ask shows fewer than 7 shares (about
        # 3% of INFY's simulated ticks) the buy fills in two or more fills, so the journal is
        # waited on for the quantity, not for one fill.
        await until(
            lambda: sum(f.quantity for f in db.fills.all()) == 7 and len(db.orders.all()) == 2
        )
        assert {f.order_id for f in db.fills.all()} == {bought.order_id}
        assert first.recorder is not None
        # An order the process was placing when it died: journaled, never acknowledged.
        dying = OrderRequest(KEY, Side.SELL, 1, OrderType.MARKET, Product.MIS, tag="dtdeadbeef00")
        now = first.clock.now()
        await first.recorder.record_intent(
            Order("dtdeadbeef00", dying, OrderStatus.PENDING, now, now)
        )
        funds_before = first.funds()
        positions_before = first.position_list()
        await first.stop()

        second = session(db, tmp_path)
        await second.start()
        try:
            orders = {o.order_id: o for o in second.order_list()}
            assert orders[bought.order_id].status is OrderStatus.FILLED
            assert orders[resting.order_id].status is OrderStatus.OPEN
            assert orders["dtdeadbeef00"].status is OrderStatus.REJECTED
            assert "not placed" in orders["dtdeadbeef00"].status_message
            (position,) = second.position_list()
            (before,) = positions_before
            assert (position.quantity, position.average_price) == (7, before.average_price)
            funds = second.funds()
            assert funds is not None and funds_before is not None
            assert funds.margin_used == funds_before.margin_used
            # The restored order can be cancelled, and new ids do not reuse old ones.
            cancelled = await second.cancel_order(resting.order_id)
            assert cancelled.status is OrderStatus.CANCELLED
            await until(lambda: second.quotes.last_price(KEY) is not None)
            again = await second.submit_order(
                OrderRequest(KEY, Side.SELL, 7, OrderType.MARKET, Product.MIS)
            )
            assert again.order_id not in orders
        finally:
            await second.stop()
    finally:
        db.close()
