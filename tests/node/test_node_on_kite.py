"""The node in front of the Kite fake: the day's token handed over, idempotent orders at Kite."""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal

import aiohttp
import pytest

from app.headless import ServerOptions
from app.settings import NodeSettings
from services.apikeys import Scope
from services.brokers.kite.session import SESSION
from services.risk.limits import RiskLimits
from tests.api.server import running_server
from tests.fakes.kite_server import FakeKite
from tests.isolation import isolated
from tests.kite_app.conftest import fake, kite_settings  # noqa: F401 (fixture)
from tests.kite_app.test_headless_session import expire, secrets_for, wait_for_session

pytestmark = isolated


async def test_token_handover_and_one_kite_order_per_idempotency_key(
    fake: FakeKite,  # noqa: F811
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    secrets = secrets_for(fake)
    settings = kite_settings(fake)
    settings = settings.model_copy(update={
        "node": NodeSettings(algo_id="ALGO42"),
        "risk": RiskLimits(max_orders_per_second=None, duplicate_window_seconds=None)})
    async with (
        running_server(ServerOptions(secrets=secrets, session_poll=600), settings=settings) as srv,
        aiohttp.ClientSession() as http,
    ):
        trade = srv.key(Scope.TRADE, Scope.READ)
        await expire(fake, http, srv.base)
        fake.access_tokens.add("handedtoken123")
        url = srv.base + "/v1/session/kite"
        headers = {"Authorization": f"Bearer {trade}"}
        async with http.post(srv.base + "/v1/session/upstox", json={"access_token": "x" * 10},
                             headers=headers) as r:  # fmt: skip
            assert r.status == 404
        async with http.post(url, json={"access_token": "handedtoken123"}, headers=headers) as r:
            assert r.status == 200, await r.text()
        await wait_for_session(http, srv.base, "valid", within=45)
        assert secrets.entries[SESSION]["access_token"] == "handedtoken123"
        assert srv.events("api.session_handover") == [{"broker": "kite"}]

        order = {"key": "NSE:INFY", "side": "BUY", "quantity": 1, "order_type": "LIMIT",
                 "product": "CNC", "price": "1400.00"}  # fmt: skip
        placed = []
        for _ in range(2):
            async with http.post(srv.base + "/v1/orders", json=order,
                                 headers={**headers, "Idempotency-Key": "kite-1"}) as r:
                assert r.status == 201, await r.text()
                placed.append((await r.json())["order_id"])
        assert placed[0] == placed[1]
        await asyncio.sleep(0.1)
        assert len(fake.orders) == 1
        # SEBI: the algo id in Kite's form, and market protection on a market order.
        market = {**order, "order_type": "MARKET", "price": None}
        for attempt in range(300):  # a market order needs a last price: the feed must tick
            await asyncio.to_thread(fake.push_ticks)
            async with http.post(srv.base + "/v1/orders", json=market,
                                 headers={**headers, "Idempotency-Key": f"m-{attempt}"}) as r:
                if r.status == 201:
                    break
                assert r.status == 409, await r.text()  # no last price yet: price_band
            await asyncio.sleep(0.1)
        sent = list(fake.orders.values())
        assert [o["algo_id"] for o in sent] == ["ALGO42", "ALGO42"]
        assert sent[1]["market_protection"] == 2

        # A GTT through the node rests at Kite (placed from the node's address).
        async with http.get(srv.base + "/v1/gtts", headers=headers) as r:
            listed = await r.json()
        assert r.status == 200 and listed["held_at"] == "Zerodha" and listed["oco"] is True
        gtt_order = {**order, "side": "SELL", "price": "1800.00"}
        body = {"legs": [{"trigger": "1000.00", "order": {**gtt_order, "price": "999.00"}},
                         {"trigger": "1800.00", "order": gtt_order}]}  # fmt: skip
        async with http.post(srv.base + "/v1/gtts", json=body, headers=headers) as r:
            assert r.status == 201, await r.text()
            gtt = await r.json()
        assert gtt["kind"] == "oco" and [Decimal(leg["trigger"]) for leg in gtt["legs"]] == [
            1000, 1800]  # as Kite reports them
        assert list(fake.gtts) == [int(gtt["gtt_id"])]
        async with http.delete(srv.base + f"/v1/gtts/{gtt['gtt_id']}", headers=headers) as r:
            assert r.status == 200, await r.text()
        assert [e["gtt_id"] for e in srv.events("api.gtt_placed")] == [str(gtt["gtt_id"])]
    # The node's own code never logs it (the Kite SDK's ticker URL is the SDK's business).
    ours = [r for r in caplog.records if r.name.startswith(("dalal", "app", "services"))]
    assert not [r for r in ours if "handedtoken123" in r.getMessage()]
