"""The order node's API on a real loopback server: idempotent orders, modify, resume, stream,
and SEBI's order rate per exchange."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import aiohttp
import pytest

from app.headless import ServerOptions
from app.settings import NodeSettings, Settings
from services.apikeys import Scope
from services.node.wire import STREAM_PROTOCOL
from services.risk.limits import RiskLimits
from services.storage import Database
from tests.api.server import Running, running_server
from tests.models_app.conftest import database  # noqa: F401 (fixture)

ORDER = {"key": "NSE:RELIANCE", "side": "BUY", "quantity": 1, "order_type": "LIMIT",
         "product": "CNC", "price": "100.00"}  # fmt: skip
OPEN_LIMITS = RiskLimits(max_orders_per_second=None, duplicate_window_seconds=None,
                         max_open_orders=None)  # fmt: skip


def settings(**node: Any) -> Settings:
    return Settings(ticks_per_second=20, models_enabled=False, risk=OPEN_LIMITS,
                    node=NodeSettings(**node))  # fmt: skip


def auth(token: str, idem: str | None = None) -> dict[str, str]:
    headers = {"Authorization": f"Bearer {token}"}
    if idem is not None:
        headers["Idempotency-Key"] = idem
    return headers


async def place(http: aiohttp.ClientSession, srv: Running, token: str, idem: str,
                body: dict[str, Any] = ORDER) -> tuple[int, dict[str, Any], str]:  # fmt: skip
    async with http.post(srv.base + "/v1/orders", json=body, headers=auth(token, idem)) as r:
        return r.status, await r.json(content_type=None), r.headers.get("Idempotent-Replayed", "")


async def orders(http: aiohttp.ClientSession, srv: Running, token: str) -> list[dict[str, Any]]:
    async with http.get(srv.base + "/v1/orders", headers=auth(token)) as r:
        return list((await r.json())["orders"])


async def test_a_retried_order_is_placed_once() -> None:
    async with running_server(settings=settings()) as srv, aiohttp.ClientSession() as http:
        trade = srv.key(Scope.TRADE, Scope.READ)
        status, first, replayed = await place(http, srv, trade, "k-1")
        assert status == 201 and replayed == "false"
        status, again, replayed = await place(http, srv, trade, "k-1")
        assert status == 201 and replayed == "true" and again == first
        # Concurrent retries of a new key: one order between them.
        results = await asyncio.gather(*(place(http, srv, trade, "k-2") for _ in range(5)))
        assert {r[1]["order_id"] for r in results} and len({r[1]["order_id"] for r in results}) == 1
        assert sorted(r[2] for r in results) == ["false"] + ["true"] * 4
        assert len(await orders(http, srv, trade)) == 2
        # The same key with another body is refused, not replayed.
        status, problem, _ = await place(http, srv, trade, "k-1", {**ORDER, "quantity": 2})
        assert status == 422 and "different order" in problem["detail"]
        async with http.post(srv.base + "/v1/orders", json=ORDER, headers=auth(trade)) as r:
            assert r.status == 400 and "Idempotency-Key" in (await r.json())["detail"]
        assert len(await orders(http, srv, trade)) == 2
        assert len(srv.events("api.order_placed")) == 2


async def test_a_retry_after_a_node_restart_returns_the_first_order(
    database: Database,  # noqa: F811
) -> None:
    options = ServerOptions(database=database)
    async with running_server(options, settings=settings()) as srv:
        token = srv.key(Scope.TRADE, Scope.READ)
        async with aiohttp.ClientSession() as http:
            status, first, _ = await place(http, srv, token, "survives-restart")
        assert status == 201
        store = srv.store
    async with (
        running_server(options, settings=settings(), store=store) as srv2,
        aiohttp.ClientSession() as http,
    ):
        status, again, replayed = await place(http, srv2, token, "survives-restart")
        assert status == 201 and replayed == "true"
        assert again["order_id"] == first["order_id"]
        assert [o["order_id"] for o in await orders(http, srv2, token)] == [first["order_id"]]


async def test_modify_cancel_kill_and_resume() -> None:
    async with running_server(settings=settings()) as srv, aiohttp.ClientSession() as http:
        trade = srv.key(Scope.TRADE, Scope.READ)
        _, placed, _ = await place(http, srv, trade, "m-1")
        url = srv.base + f"/v1/orders/{placed['order_id']}"
        async with http.patch(url, json={"price": "99.50", "quantity": 2},
                              headers=auth(trade)) as r:  # fmt: skip
            assert r.status == 200, await r.text()
            modified = await r.json()
        assert modified["price"] == "99.50" and modified["quantity"] == 2
        async with http.patch(url, json={}, headers=auth(trade)) as r:
            assert r.status == 422
        async with http.patch(srv.base + "/v1/orders/NOPE", json={"price": "1.00"},
                              headers=auth(trade)) as r:  # fmt: skip
            assert r.status == 404
        async with http.post(srv.base + "/v1/killswitch/resume", json={"reason": "why not"},
                             headers=auth(trade)) as r:  # fmt: skip
            assert r.status == 409  # not halted
        async with http.post(srv.base + "/v1/killswitch", json={"reason": "test"},
                             headers=auth(trade)) as r:  # fmt: skip
            assert (await r.json())["cancelled"] == [placed["order_id"]]
        status, refused, _ = await place(http, srv, trade, "m-2")
        assert status == 409 and refused["rule"] == "trading_state"
        async with http.post(srv.base + "/v1/killswitch/resume", json={"reason": "checked"},
                             headers=auth(trade)) as r:  # fmt: skip
            assert r.status == 200, await r.text()
            assert (await r.json())["state"] == "ACTIVE"
        assert srv.events("api.killswitch_resumed")[0]["reason"] == "checked"
        status, _, _ = await place(http, srv, trade, "m-3")
        assert status == 201


async def test_openapi_lists_the_node_routes() -> None:
    async with (
        running_server(settings=settings()) as srv,
        aiohttp.ClientSession() as http,
        http.get(srv.base + "/openapi.json") as r,
    ):
        paths = (await r.json())["paths"]
    assert "patch" in paths["/v1/orders/{order_id}"]
    assert "post" in paths["/v1/killswitch/resume"]
    assert "101" in paths["/v1/stream"]["get"]["responses"]
    params = paths["/v1/orders"]["post"]["parameters"]
    wanted = {"name": "Idempotency-Key", "in": "header", "required": True}
    assert wanted.items() <= params[0].items()


async def _read_until(ws: aiohttp.ClientWebSocketResponse, pred: Any) -> list[dict[str, Any]]:
    got: list[dict[str, Any]] = []
    async with asyncio.timeout(10):
        while True:
            msg = json.loads((await ws.receive()).data)
            got.append(msg)
            if pred(msg):
                return got


async def test_stream_snapshot_events_and_resume_without_gap_or_duplicate() -> None:
    async with running_server(settings=settings()) as srv, aiohttp.ClientSession() as http:
        trade, read = srv.key(Scope.TRADE), srv.key(Scope.READ)
        async with http.get(srv.base + "/v1/stream", headers=auth(read)) as r:
            assert r.status == 400  # not an upgrade
        async with http.ws_connect(srv.base + "/v1/stream", headers=auth(read),
                                   protocols=(STREAM_PROTOCOL,)) as ws:  # fmt: skip
            assert ws.protocol == STREAM_PROTOCOL
            hello = json.loads((await ws.receive()).data)
            snap = json.loads((await ws.receive()).data)
            assert hello["type"] == "hello" and snap["type"] == "snapshot"
            assert snap["seq"] == hello["seq"] and snap["trading_state"]["state"] == "ACTIVE"
            _, placed, _ = await place(http, srv, trade, "s-1")
            events = await _read_until(ws, lambda m: m["kind"] == "order"
                                       and m["data"]["order_id"] == placed["order_id"])
            seqs = [m["seq"] for m in events]
            assert seqs == list(range(snap["seq"] + 1, snap["seq"] + 1 + len(seqs)))
            last = seqs[-1]
        # Disconnected: two more orders and a kill switch happen.
        for idem in ("s-2", "s-3"):
            await place(http, srv, trade, idem, {**ORDER, "price": "101.00"})
        async with http.post(srv.base + "/v1/killswitch", headers=auth(trade)) as r:
            assert r.status == 200
        await asyncio.sleep(0.5)  # the journal polls the trading state
        url = srv.base + f"/v1/stream?since={last}&epoch={hello['epoch']}"
        async with http.ws_connect(url, headers=auth(read), protocols=(STREAM_PROTOCOL,)) as ws:
            hello2 = json.loads((await ws.receive()).data)
            missed = [json.loads((await ws.receive()).data)
                      for _ in range(hello2["seq"] - last)]  # fmt: skip
        assert [m["seq"] for m in missed] == list(range(last + 1, hello2["seq"] + 1))
        assert all(m["type"] == "event" for m in missed)
        kinds = [m["kind"] for m in missed]
        assert "killswitch" in kinds and "trading_state" in kinds
        cancelled = {m["data"]["order_id"] for m in missed
                     if m["kind"] == "order" and m["data"]["status"] == "CANCELLED"}
        assert len(cancelled) == 3
        # Another epoch (a restarted node): a snapshot, never a replay of foreign numbers.
        url = srv.base + f"/v1/stream?since={last}&epoch=0000000000000000"
        async with http.ws_connect(url, headers=auth(read), protocols=(STREAM_PROTOCOL,)) as ws:
            await ws.receive()
            assert json.loads((await ws.receive()).data)["type"] == "snapshot"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await http.ws_connect(srv.base + "/v1/stream", headers=auth(read),
                                  protocols=("other.v9",))  # fmt: skip
        assert refused.value.status == 400


@pytest.mark.parametrize("mode", ["refuse", "wait"])
async def test_eleven_orders_in_one_second_on_nse(mode: str) -> None:
    async with running_server(settings=settings(rate_mode=mode),
                              options=ServerOptions(rate=1000, burst=1000)) as srv, \
            aiohttp.ClientSession() as http:  # fmt: skip
        trade = srv.key(Scope.TRADE)
        started = time.monotonic()
        results = []
        for i in range(11):
            body = {**ORDER, "price": f"{100 + i}.00"}
            results.append(await place(http, srv, trade, f"r-{mode}-{i}", body))
            results[-1] = (*results[-1][:2], time.monotonic() - started)
        statuses = [r[0] for r in results]
        assert statuses[:10] == [201] * 10
        if mode == "refuse":
            assert statuses[10] == 429 and results[10][1]["rule"] == "sebi_order_rate"
        else:
            assert statuses[10] == 201
            assert results[10][2] >= 0.95  # it waited for the one-second window to move


async def test_readyz_shows_the_registered_address_and_the_family_is_pinned() -> None:
    import socket

    from services.node.egress import pinned_family

    node = {"registered_ip": "203.0.113.7", "egress_family": "ipv4"}
    try:
        async with running_server(settings=settings(**node)) as srv, \
                aiohttp.ClientSession() as http, http.get(srv.base + "/readyz") as r:  # fmt: skip
            egress = (await r.json())["components"]["egress"]
            assert pinned_family() == socket.AF_INET
        assert egress["registered_ip"] == "203.0.113.7" and egress["family"] == "ipv4"
    finally:
        from services.node.egress import pin_family

        pin_family("any")


async def test_cli_resumes_a_halted_node_and_says_why_not_when_it_is_not() -> None:
    import os
    import sys

    async with running_server(settings=settings()) as srv, aiohttp.ClientSession() as http:
        trade = srv.key(Scope.TRADE)
        async with http.post(srv.base + "/v1/killswitch", headers=auth(trade)) as r:
            assert r.status == 200

        async def cli(*args: str) -> tuple[int, str, str]:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "app", "node", "resume", "--url", srv.base, *args,
                env={**os.environ, "DALAL_NODE_KEY": trade},
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)  # fmt: skip
            out, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode or 0, out.decode(), err.decode()

        code, out, _ = await cli("--reason", "checked from the shell")
        assert code == 0 and "ACTIVE" in out
        assert srv.events("api.killswitch_resumed")[0]["reason"] == "checked from the shell"
        code, _, err = await cli("--reason", "again")
        assert code == 2 and "HALTED" in err and "Traceback" not in err
        assert len(err.strip().splitlines()) == 1
