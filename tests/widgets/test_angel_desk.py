"""Angel One on the desktop's widgets: SmartWebSocketV2 ticks in the watchlist, and an order
placed and cancelled through the order manager on the Angel adapter, shown in the order book.

The app's wiring does not select Angel One yet (``settings.broker`` is paper or Kite), so
the test composes the real parts the wiring would: the watchlist on the services' bus fed
by ``AngelFeed`` (the real SDK socket, from the fake), and an ``OrderManager`` over
``AngelExecution`` (the real SDK client) behind the order book's facade.
"""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from app.wiring import AppServices
from services.broker import OrderChange
from services.brokers.angelone.feed import AngelFeed
from services.brokers.ports import FeedMode
from services.bus import ORDERS
from services.clock import SystemClock
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from services.orders import OrderManager
from tests.brokers.angelone.conftest import endpoints_for, make_execution
from tests.fakes.angelone import FakeAngel
from tests.widgets.conftest import LoopRunner
from widgets.order_book import OrderBookWidget
from widgets.watchlist import WatchlistWidget


class AngelDesk:
    """The order side of the facade, on the Angel order manager; the rest from the app."""

    def __init__(self, services: AppServices, orders: OrderManager) -> None:
        self._services = services
        self._orders = orders

    def __getattr__(self, name: str) -> Any:
        return getattr(self._services, name)

    async def submit_order(self, request: OrderRequest) -> Order:
        return await self._orders.submit(request)

    async def cancel_order(self, order_id: str) -> Order:
        return await self._orders.cancel(order_id)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        return await self._orders.modify(order_id, change)

    def order_list(self) -> list[Order]:
        return self._orders.orders()


@pytest.fixture
def fake() -> Iterator[FakeAngel]:
    with FakeAngel(hang_seconds=1.0) as server:
        yield server


def test_angel_ticks_reach_the_watchlist_and_an_order_is_placed_and_cancelled(
    qtbot: Any, qloop: LoopRunner, services: AppServices, fake: FakeAngel
) -> None:
    execution = make_execution(fake)
    feed = AngelFeed(
        fake.api_key,
        execution.tokens,  # type: ignore[arg-type]
        execution.instruments,
        services.bus,
        endpoints=endpoints_for(fake),
        loop=qloop.loop,
    )
    watchlist = WatchlistWidget(services, ["NSE:SBIN", "NSE:INFY"])
    qtbot.addWidget(watchlist)
    watchlist.show()
    quotes = qloop.loop.create_task(services.quotes.run())
    pump = qloop.loop.create_task(watchlist_pump(services, watchlist))
    try:
        feed.subscribe(["NSE:SBIN"], FeedMode.FULL)
        feed.subscribe(["NSE:INFY"], FeedMode.QUOTE)
        feed.start()
        qloop.until(lambda: fake.subscriptions(), what="subscriptions at the fake")
        fake.push_ticks()

        def ltp(key: str) -> Decimal | None:
            row = watchlist.model.row_of(key)
            tick = None if row is None else watchlist.model.row_at(row).tick
            return None if tick is None else tick.last_price

        qloop.until(
            lambda: ltp("NSE:SBIN") == Decimal("812.40") and ltp("NSE:INFY") == Decimal("1510.05"),
            what="Angel prices in the watchlist",
        )
        qloop.until(lambda: watchlist.table.isVisible())
        grab = watchlist.grab()
        assert not grab.isNull()

        orders = OrderManager(
            execution, services.instruments, services.quotes, services.bus, SystemClock()
        )
        desk = AngelDesk(services, orders)
        book = OrderBookWidget(desk)  # type: ignore[arg-type]
        qtbot.addWidget(book)
        book.show()
        feed_orders = services.bus.subscribe(ORDERS, "test-order-book")
        request = OrderRequest(
            "NSE:SBIN", Side.BUY, 2, OrderType.LIMIT, Product.CNC, price=Decimal("800.05")
        )
        placed = qloop.run(desk.submit_order(request))
        assert placed.order_id in fake.orders
        assert fake.orders[placed.order_id]["ordertag"] == placed.request.tag
        book.apply_orders(feed_orders.drain())
        book.resync()
        book.select_order(placed.order_id)
        assert book.selected_order() is not None
        book.cancel_selected()  # the order book's own Cancel button path
        qloop.until(
            lambda: fake.orders[placed.order_id]["orderstatus"] == "cancelled",
            what="the cancel at Angel",
        )
        qloop.until(
            lambda: any(
                o.order_id == placed.order_id and o.status is OrderStatus.CANCELLED
                for o in desk.order_list()
            ),
            what="the cancelled order in the order manager",
        )
        book.resync()
        row = book.model.row_of(placed.order_id)
        assert row is not None
        assert book.model.row_at(row).status is OrderStatus.CANCELLED
    finally:
        feed.stop()
        quotes.cancel()
        pump.cancel()


async def watchlist_pump(services: AppServices, watchlist: WatchlistWidget) -> None:
    """What the main window's UI pump does for the watchlist: ticks from the bus."""
    from services.bus import TICKS

    sub = services.bus.subscribe(TICKS, "test-watchlist")
    while True:
        watchlist.model.apply_ticks(await sub.next_batch())
