"""With Kite, a fill reaches positions and funds within a second, not at the next reconnect.

The order update is the one the fake Kite sends on its WebSocket (read here with a plain
aiohttp client, since Twisted's reactor cannot run in the test process) and goes through the
real ``KiteStream`` handler onto the bus; the runtime then reads positions, margins and
trades back from the fake over REST, through the real SDK.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import datetime
from decimal import Decimal
from typing import Any

import aiohttp
import pytest

from app.wiring import AppServices
from services.brokers.kite.feed import KiteStream
from services.bus import FILLS
from services.clock import IST, ManualClock
from services.domain import Holding, Product
from tests.fakes.kite_server import FakeKite
from tests.kite_app.test_kite_reconcile import kite_services, wait_for
from tests.kite_app.test_kite_wiring import NOW, limit_buy


class Running:
    """Kite services with the order manager and the fill follower running (no ticker)."""

    def __init__(self, services: AppServices, fake: FakeKite) -> None:
        self.services = services
        self.fake = fake
        kite = services.kite
        assert kite is not None
        self.kite = kite
        self.stream = KiteStream(
            fake.api_key,
            "fakeaccesstoken",
            services.bus,
            kite.tokens,
            root=f"ws://127.0.0.1:{fake.port}/ws",
            loop=asyncio.get_running_loop(),
        )

    async def order_update(
        self, ws: aiohttp.ClientWebSocketResponse, filled: int
    ) -> dict[str, Any]:
        """Wait for Kite's socket to say the order has ``filled`` shares; hand it on."""
        while True:
            msg = await asyncio.wait_for(ws.receive(), 5)
            if msg.type is not aiohttp.WSMsgType.TEXT:
                continue  # heartbeats
            update: dict[str, Any] = json.loads(msg.data)
            if update.get("type") == "order" and update["data"]["filled_quantity"] == filled:
                self.stream._on_order_update(None, update["data"])
                return dict(update["data"])


@pytest.fixture
async def running(fake: FakeKite) -> AsyncIterator[Running]:
    services = await kite_services(fake, ManualClock(NOW))
    harness = Running(services, fake)
    tasks = [
        asyncio.create_task(services.orders.run()),
        asyncio.create_task(harness.kite.follow_fills()),
    ]
    try:
        await wait_for(lambda: harness.kite.portfolio_refreshes == 1)
        yield harness
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


async def socket(fake: FakeKite, http: aiohttp.ClientSession) -> aiohttp.ClientWebSocketResponse:
    url = f"ws://127.0.0.1:{fake.port}/ws?api_key={fake.api_key}&access_token=fakeaccesstoken"
    return await http.ws_connect(url)


async def test_fill_updates_positions_and_funds_within_a_second(running: Running) -> None:
    services, fake = running.services, running.fake
    # The start-up read gives the funds before any reconciliation.
    funds = services.funds()
    assert funds is not None and funds.margin_used == 0
    assert funds.available_cash == Decimal("250000")
    assert services.position_list() == []
    fills = services.bus.subscribe(FILLS, "test")

    async with aiohttp.ClientSession() as http, await socket(fake, http) as ws:
        order = await services.submit_order(limit_buy(quantity=4))
        fake.fill(order.order_id, 3)  # a partial fill
        await running.order_update(ws, filled=3)
        started = asyncio.get_running_loop().time()
        await wait_for(lambda: [p.quantity for p in services.position_list()] == [3], 1.0)
        await wait_for(lambda: services.funds().margin_used != 0, 1.0)  # type: ignore[union-attr]
        elapsed = asyncio.get_running_loop().time() - started
    assert elapsed < 1.0
    (position,) = services.position_list()
    assert (position.key, position.product) == ("NSE:INFY", Product.CNC)
    assert position.average_price == Decimal("1570.1")
    funds = services.funds()
    assert funds is not None
    assert funds.margin_used == Decimal("1570.1") * 3
    assert funds.available_cash == Decimal("250000") - Decimal("1570.1") * 3
    # The risk engine's view is the order manager's: the bought shares count now.
    assert services.orders.positions() == [position]
    # The trade itself is on the bus once (for the chart and the journal) and in the book.
    trades = fills.drain()
    assert [(f.order_id, f.quantity) for f in trades] == [(order.order_id, 3)]
    assert [f.fill_id for f in services.orders.fills()] == [trades[0].fill_id]


async def test_a_burst_of_fills_is_one_refresh_per_second(running: Running) -> None:
    services, fake = running.services, running.fake
    reads_before = fake.journal.count("GET", "/portfolio/positions")
    async with aiohttp.ClientSession() as http, await socket(fake, http) as ws:
        order = await services.submit_order(limit_buy(quantity=5))
        for filled in range(1, 6):
            fake.fill(order.order_id, 1)
            last = await running.order_update(ws, filled=filled)
        await wait_for(lambda: [p.quantity for p in services.position_list()] == [5], 2.5)
        # A repeated update (no new fill) reads nothing.
        running.stream._on_order_update(None, last)
        await asyncio.sleep(1.2)
    reads = fake.journal.count("GET", "/portfolio/positions") - reads_before
    # The first fill is read at once; the other four wait for one read a second later.
    assert reads == 2


async def test_holdings_at_start_daily_and_after_a_relogin(running: Running) -> None:
    kite, fake = running.kite, running.fake
    seen: list[list[Holding]] = []
    task = asyncio.create_task(kite.follow_holdings(seen.append))
    try:
        await wait_for(lambda: len(seen) == 1)
        assert seen[0] == [
            Holding("NSE:SBIN", 12, Decimal("701.5"), Decimal("812.4"))  # 10 + 2 at T+1
        ]
        # Next read: 08:00 IST tomorrow (22 h from 10:00); before 08:00, the same morning.
        assert kite.seconds_to_holdings_refresh() == 22 * 3600
        early = datetime(2026, 11, 26, 7, 30, tzinfo=IST)
        assert kite.seconds_to_holdings_refresh(early) == 30 * 60
        # A new login reads them again at once.
        fake.holdings[0] = {**fake.holdings[0], "quantity": 4, "t1_quantity": 0}
        running.services.session_renewed("fakeaccesstoken")
        await wait_for(lambda: len(seen) == 2)
        assert seen[1][0].quantity == 4
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
