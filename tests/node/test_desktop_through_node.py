"""The desktop's services trading through a real ``dalal headless`` node on loopback.

Place, modify and cancel through the node; the node killed mid-stream (orders refused as
"orders unavailable" while market data keeps flowing), restarted, and the desktop's book
matching the node's again; the desktop's kill switch halting the node.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.settings import NodeSettings, Settings
from app.wiring import AppServices, build_services
from services.broker import OrderChange, OrderRejected
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side, round_to_tick
from services.risk.limits import RiskLimits
from tests.kite_app.conftest import MemorySecrets
from tests.node.node_process import NodeProcess

KEY = "NSE:INFY"
OPEN_LIMITS = {"max_orders_per_second": None, "duplicate_window_seconds": None}


@pytest.fixture
def node(tmp_path: Path) -> Any:
    process = NodeProcess(tmp_path / "node", settings={"risk": OPEN_LIMITS, "seed": 7})
    process.root.mkdir()
    token = process.create_key()
    process.start()
    try:
        yield process, token
    finally:
        process.stop()


@pytest.fixture
async def desktop(node: tuple[NodeProcess, str]) -> AsyncIterator[AppServices]:
    process, token = node
    settings = Settings(seed=7, ticks_per_second=20, models_enabled=False,
                        risk=RiskLimits(**OPEN_LIMITS),  # type: ignore[arg-type]
                        node=NodeSettings(venue="node", url=process.base))  # fmt: skip
    services = build_services(settings, secrets=MemorySecrets({"node": {"api_key": token}}))
    await services.start()
    assert services.node is not None
    await asyncio.wait_for(services.node.stream.wait_connected(), 60)
    try:
        yield services
    finally:
        await services.stop()


async def until(check: Callable[[], bool], within: float = 45.0) -> None:
    """Poll a condition another process or a socket makes true (no event to wait on)."""
    async with asyncio.timeout(within):
        while not check():  # noqa: ASYNC110
            await asyncio.sleep(0.05)


async def node_orders(process: NodeProcess, token: str) -> dict[str, str]:
    return await asyncio.to_thread(_node_orders, process, token)


def _node_orders(process: NodeProcess, token: str) -> dict[str, str]:
    request = urllib.request.Request(process.base + "/v1/orders",
                                     headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(request, timeout=5) as r:
        return {o["order_id"]: o["status"] for o in json.loads(r.read())["orders"]}


def resting_buy(services: AppServices, quantity: int = 1) -> OrderRequest:
    tick = services.last_tick(KEY)
    inst = services.instrument(KEY)
    assert tick is not None and inst is not None
    price = round_to_tick(tick.last_price * Decimal("0.95"), inst.tick_size)
    return OrderRequest(KEY, Side.BUY, quantity, OrderType.LIMIT, Product.CNC, price=price,
                        source="ticket")  # fmt: skip


@pytest.mark.timeout(300)
async def test_place_modify_cancel_through_the_node(
    desktop: AppServices, node: tuple[NodeProcess, str]
) -> None:
    process, token = node
    await until(lambda: desktop.last_tick(KEY) is not None)
    placed = await desktop.submit_order(resting_buy(desktop))
    assert placed.status is OrderStatus.OPEN and placed.request.tag is not None
    assert await node_orders(process, token) == {placed.order_id: "OPEN"}
    # The node's stream brings the order into the desktop's book.
    await until(lambda: any(o.order_id == placed.order_id for o in desktop.order_list()))

    new_price = placed.request.price - Decimal("1.00")  # type: ignore[operator]
    modified = await desktop.modify_order(placed.order_id, OrderChange(price=new_price))
    assert modified.request.price == new_price
    cancelled = await desktop.cancel_order(placed.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    await until(lambda: desktop.orders.order(placed.order_id) is not None
                and desktop.orders.order(placed.order_id).status is OrderStatus.CANCELLED)
    assert await node_orders(process, token) == {placed.order_id: "CANCELLED"}
    # An after-market order crosses to the node as one, and the node's venue holds it.
    amo = await desktop.submit_order(replace(resting_buy(desktop), amo=True))
    assert amo.request.amo and amo.status_message.startswith("after-market order")
    await desktop.cancel_order(amo.order_id)


@pytest.mark.timeout(300)
async def test_node_killed_mid_stream_then_restarted(
    desktop: AppServices, node: tuple[NodeProcess, str]
) -> None:
    process, token = node
    stream = desktop.node.stream  # type: ignore[union-attr]
    await until(lambda: desktop.last_tick(KEY) is not None)
    first = await desktop.submit_order(resting_buy(desktop))
    first_epoch = stream.epoch

    process.kill()
    await until(lambda: not stream.connected)
    with pytest.raises(OrderRejected) as refused:
        await desktop.submit_order(resting_buy(desktop))
    assert "orders unavailable" in str(refused.value)
    # Data does not go through the node: the desktop's feed keeps ticking.
    before = desktop.last_tick(KEY)
    await until(lambda: desktop.last_tick(KEY) is not before)

    process.start()
    await asyncio.wait_for(stream.wait_connected(), 60)
    await until(lambda: stream.snapshots >= 2)  # the snapshot follows the hello
    assert stream.epoch != first_epoch
    # The restarted node still has the order (its journal) and the desktop agrees with it.
    second = await desktop.submit_order(resting_buy(desktop, 2))
    on_node = await node_orders(process, token)
    assert on_node[first.order_id] == "OPEN" and on_node[second.order_id] == "OPEN"
    await until(lambda: {o.order_id: o.status.value for o in desktop.order_list()
                         if o.order_id in on_node} == on_node)
    assert stream.gaps == 0


@pytest.mark.timeout(300)
async def test_desktop_kill_switch_halts_the_node_and_resume_reaches_it(
    desktop: AppServices, node: tuple[NodeProcess, str]
) -> None:
    process, token = node
    stream = desktop.node.stream  # type: ignore[union-attr]
    await until(lambda: desktop.last_tick(KEY) is not None)
    placed = await desktop.submit_order(resting_buy(desktop))
    report = await desktop.kill(square_off=False, reason="test")
    assert report.cancelled == (placed.order_id,) and not report.failed
    await until(lambda: stream.trading_state.get("state") == "HALTED")
    assert await node_orders(process, token) == {placed.order_id: "CANCELLED"}
    state = await desktop.resume_trading("checked the book")
    assert state.value == "ACTIVE"
    await until(lambda: stream.trading_state.get("state") == "ACTIVE")
    again = await desktop.submit_order(resting_buy(desktop))
    assert again.status is OrderStatus.OPEN
