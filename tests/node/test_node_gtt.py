"""A desktop trading through the node keeps its GTTs on the node (``/v1/gtts``), where they
fire with the desktop closed and survive the node's restart. Real parts: a ``dalal
headless`` process with its encrypted profile and paper venue, and the desktop's services."""

from __future__ import annotations

import asyncio
import json
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from app.settings import NodeSettings, Settings
from app.wiring import AppServices, build_services
from services.brokers.errors import InvalidInput
from services.domain import OrderRequest, OrderType, Product, Side
from services.gtt import GttKind, GttStatus, LegChange
from services.risk.limits import RiskLimits
from tests.kite_app.conftest import MemorySecrets
from tests.node.node_process import NodeProcess

KEY = "NSE:INFY"
OPEN_LIMITS = {"max_orders_per_second": None, "duplicate_window_seconds": None}


@pytest.fixture
async def through_node(tmp_path: Path) -> AsyncIterator[tuple[NodeProcess, str, AppServices]]:
    process = NodeProcess(tmp_path / "node",
                          settings={"risk": OPEN_LIMITS, "seed": 7, "always_open": True})
    process.root.mkdir()
    token = process.create_key()
    await asyncio.to_thread(process.start)
    settings = Settings(seed=7, ticks_per_second=50, always_open=True, models_enabled=False,
                        watchlist=[KEY], risk=RiskLimits(**OPEN_LIMITS),  # type: ignore[arg-type]
                        node=NodeSettings(venue="node", url=process.base))  # fmt: skip
    services = build_services(settings, secrets=MemorySecrets({"node": {"api_key": token}}))
    await services.start()
    try:
        for _ in range(1000):
            if services.quotes.last_price(KEY) is not None:
                break
            await asyncio.sleep(0.01)
        yield process, token, services
    finally:
        await services.stop()
        await asyncio.to_thread(process.stop)


def _limit(side: Side, price: Decimal) -> OrderRequest:
    return OrderRequest(KEY, side, 1, OrderType.LIMIT, Product.CNC, price=price)


def _post(process: NodeProcess, token: str, path: str, body: Any) -> tuple[int, Any]:
    return _call(process, token, "POST", path, body)


def _call(
    process: NodeProcess, token: str, method: str, path: str, body: Any = None
) -> tuple[int, Any]:
    request = urllib.request.Request(
        process.base + path, data=None if body is None else json.dumps(body).encode(),
        method=method,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.timeout(300)
async def test_gtts_placed_from_the_desktop_rest_on_the_node_and_survive_its_restart(
    through_node: tuple[NodeProcess, str, AppServices],
) -> None:
    process, token, services = through_node
    ltp = services.quotes.last_price(KEY)
    assert ltp is not None
    low, high = (ltp * Decimal("0.7")).quantize(Decimal("0.05")), (
        ltp * Decimal("1.3")).quantize(Decimal("0.05"))

    for _ in range(300):  # the node compares with its own last price: wait for its first
        try:
            single = await services.place_gtt_single(low, _limit(Side.BUY, low))
            break
        except InvalidInput as e:
            assert "no last price" in str(e)
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("the node never had a price for the instrument")
    oco = await services.place_gtt_oco(low, _limit(Side.SELL, low), high, _limit(Side.SELL, high))
    assert single.status is GttStatus.ACTIVE and single.legs[0].rising is False
    assert oco.kind is GttKind.OCO and [leg.trigger for leg in oco.legs] == [low, high]
    assert services.gtt is not None and services.gtt.gtts() == []  # none held on the desktop
    listed = await services.gtt_list()
    assert [g.gtt_id for g in listed] == [single.gtt_id, oco.gtt_id]
    assert services.gtt_held_at() == "your order node"  # the paper node's own book
    assert listed[1].legs[1].order.price == high  # exact decimals across the wire

    moved = await services.modify_gtt(oco.gtt_id, [LegChange(low + 1, low), LegChange(high)])
    assert [leg.trigger for leg in moved.legs] == [low + 1, high]
    assert moved.legs[0].order.price == low and moved.gtt_id == oco.gtt_id
    oco = moved
    cancelled = await services.cancel_gtt(single.gtt_id)
    assert cancelled.status is GttStatus.CANCELLED

    with pytest.raises(InvalidInput, match="stop below and its target above"):
        await services.place_gtt_oco(high, _limit(Side.SELL, high), high + 1,
                                     _limit(Side.SELL, high + 1))  # fmt: skip

    await _refuses_bad_bodies_and_read_only_keys(process, token)

    await asyncio.to_thread(process.kill)  # a power cut on the VPS
    await asyncio.to_thread(process.start)
    for _ in range(300):  # the desktop's client reconnects on its own
        try:
            after = await services.gtt_list()
            break
        except Exception:
            await asyncio.sleep(0.1)
    else:
        raise AssertionError("the node did not come back")
    assert [(g.gtt_id, g.status) for g in after] == [
        (single.gtt_id, GttStatus.CANCELLED), (oco.gtt_id, GttStatus.ACTIVE)]
    assert after[1].legs == oco.legs


async def _refuses_bad_bodies_and_read_only_keys(process: NodeProcess, token: str) -> None:
    order = {"key": KEY, "side": "BUY", "quantity": 1, "order_type": "LIMIT",
             "product": "CNC", "price": "100"}  # fmt: skip
    status, body = await asyncio.to_thread(_post, process, token, "/v1/gtts", {"legs": [
        {"trigger": "100", "order": order}] * 3})
    assert status == 422 and body["errors"][0]["field"] == "legs"
    status, body = await asyncio.to_thread(_post, process, token, "/v1/gtts", {"legs": [
        {"trigger": 100.5, "order": order}]})  # a float price is refused, never rounded
    assert status == 422 and "legs.0.trigger" in [e["field"] for e in body["errors"]]
    status, body = await asyncio.to_thread(_call, process, token, "DELETE", "/v1/gtts/9%20or%201")
    assert status == 404 and body["detail"] == "no GTT '9 or 1'"
    reader = await asyncio.to_thread(process.create_key, "read")
    status, body = await asyncio.to_thread(_post, process, reader, "/v1/gtts", {"legs": [
        {"trigger": "100", "order": order}]})
    assert status == 403
