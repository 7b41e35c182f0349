"""The control API on a real loopback server: every status code, keys, scopes, limits, bodies."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from typing import Any

import aiohttp

from app.headless import ServerOptions
from services.apikeys import Scope
from tests.api.server import Running, running_server

PROBLEM = "application/problem+json"
ORDER = {
    "key": "NSE:RELIANCE",
    "side": "BUY",
    "quantity": 1,
    "order_type": "LIMIT",
    "product": "CNC",
    "price": "100.00",
}


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def order_headers(token: str) -> dict[str, str]:
    """A trade request with a fresh Idempotency-Key (every order needs one)."""
    return {**auth(token), "Idempotency-Key": uuid.uuid4().hex}


async def problem_of(resp: aiohttp.ClientResponse, status: int) -> dict[str, Any]:
    text = await resp.text()
    assert resp.status == status, text
    assert resp.content_type == PROBLEM, text
    assert "Traceback" not in text and "File \"" not in text
    body: dict[str, Any] = json.loads(text)
    assert body["status"] == status
    return body


async def orders(http: aiohttp.ClientSession, srv: Running, token: str) -> list[dict[str, Any]]:
    async with http.get(srv.base + "/v1/orders", headers=auth(token)) as r:
        assert r.status == 200
        return (await r.json())["orders"]  # type: ignore[no-any-return]


def metric(text: str, name: str, labels: str = "") -> float | None:
    m = re.search(rf"^{re.escape(name)}{re.escape(labels)} (\S+)$", text, re.MULTILINE)
    return float(m.group(1)) if m else None


async def test_probes_metrics_and_openapi_are_open_on_loopback() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        for path in ("/livez", "/healthz", "/openapi.json", "/metrics"):
            async with http.get(srv.base + path) as r:
                assert r.status == 200, path
                assert r.headers["Cache-Control"] == "no-store"
                assert "Set-Cookie" not in r.headers
        async with http.get(srv.base + "/openapi.json") as r:
            doc = await r.json()
        ops = {(m.upper(), p): op for p, item in doc["paths"].items() for m, op in item.items()}
        assert ops[("POST", "/v1/orders")]["security"] == [{"bearerAuth": []}]
        assert ops[("GET", "/livez")]["security"] == []
        body = doc["components"]["schemas"]["OrderBody"]
        assert body["additionalProperties"] is False
        assert "quantity" in body["required"]
        async with http.get(srv.base + "/nope") as r:
            await problem_of(r, 404)
        async with http.put(srv.base + "/v1/orders") as r:
            await problem_of(r, 405)
            assert set(r.headers["Allow"].split(",")) == {"GET", "POST"}


async def test_missing_invalid_expired_and_revoked_keys_get_401_with_a_challenge() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        good = srv.store.create("k", [Scope.READ])
        expired = srv.store.create("old", [Scope.READ])
        srv.store._conn.execute(  # expire it in the past, as time would
            "UPDATE api_keys SET expires_at = '2020-01-01T00:00:00+00:00' WHERE key_id = ?",
            (expired.key.key_id,),
        )
        revoked = srv.store.create("gone", [Scope.READ])
        srv.store.revoke(revoked.key.key_id)
        url = srv.base + "/v1/positions"
        async with http.get(url) as r:
            await problem_of(r, 401)
            assert r.headers["WWW-Authenticate"] == 'Bearer realm="dalal"'
        presented = [
            "nonsense",
            "dk_000000000000_" + "A" * 43,
            str(good.token)[:-1] + ("B" if str(good.token)[-1] != "B" else "C"),
            str(expired.token),
            str(revoked.token),
        ]
        for token in presented:
            async with http.get(url, headers=auth(token)) as r:
                body = await problem_of(r, 401)
                assert 'error="invalid_token"' in r.headers["WWW-Authenticate"]
                assert body["detail"] == "the API key is not valid"  # no hint which check failed
        async with http.get(url, headers={"Authorization": f"Basic {good.token}"}) as r:
            await problem_of(r, 401)
        async with http.get(url, headers=auth(str(good.token))) as r:
            assert r.status == 200
            assert await r.json() == {"positions": []}
        reasons = [e["reason"] for e in srv.events("api.auth_failure")]
        assert reasons == ["malformed", "unknown", "wrong_secret", "expired", "revoked",
                           "malformed"]  # fmt: skip
        async with http.get(srv.base + "/metrics") as r:
            text = await r.text()
        assert metric(text, "dalal_auth_failures_total", '{reason="missing"}') == 1
        assert metric(text, "dalal_auth_failures_total", '{reason="revoked"}') == 1
        assert metric(text, "dalal_blocked_addresses") == 0


async def test_scopes_are_enforced_per_endpoint() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        read, trade = srv.key(Scope.READ), srv.key(Scope.TRADE)
        async with http.post(srv.base + "/v1/orders", json=ORDER, headers=auth(read)) as r:
            await problem_of(r, 403)
            assert 'scope="trade"' in r.headers["WWW-Authenticate"]
        async with http.post(srv.base + "/v1/killswitch", headers=auth(read)) as r:
            await problem_of(r, 403)
        async with http.delete(srv.base + "/v1/orders/x", headers=auth(read)) as r:
            await problem_of(r, 403)
        async with http.get(srv.base + "/v1/orders", headers=auth(trade)) as r:
            await problem_of(r, 403)
        assert await orders(http, srv, read) == []


async def test_order_place_cancel_and_refusals_through_the_order_manager() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        trade, read = srv.key(Scope.TRADE), srv.key(Scope.READ)
        async with http.post(srv.base + "/v1/orders", json=ORDER,
                             headers=order_headers(trade)) as r:  # fmt: skip
            assert r.status == 201, await r.text()
            placed = await r.json()
        assert placed["status"] == "OPEN" and placed["source"] == "api"
        assert placed["price"] == "100.00"
        assert [o["order_id"] for o in await orders(http, srv, read)] == [placed["order_id"]]
        assert srv.events("api.order_placed")[0]["order_id"] == placed["order_id"]

        off_grid = {**ORDER, "price": "100.003"}
        async with http.post(srv.base + "/v1/orders", json=off_grid,
                             headers=order_headers(trade)) as r:  # fmt: skip
            body = await problem_of(r, 422)
            assert body["errors"][0]["field"] == "price"
        no_price = {k: v for k, v in ORDER.items() if k != "price"}
        async with http.post(srv.base + "/v1/orders", json=no_price,
                             headers=order_headers(trade)) as r:  # fmt: skip
            assert (await problem_of(r, 422))["errors"][0]["field"] == "price"
        unknown = {**ORDER, "key": "NSE:NOSUCHCO"}
        async with http.post(srv.base + "/v1/orders", json=unknown,
                             headers=order_headers(trade)) as r:  # fmt: skip
            assert (await problem_of(r, 422))["errors"][0]["field"] == "symbol"

        url = srv.base + f"/v1/orders/{placed['order_id']}"
        async with http.delete(url, headers=auth(trade)) as r:
            assert r.status == 200
            assert (await r.json())["status"] == "CANCELLED"
        async with http.delete(url, headers=auth(trade)) as r:
            await problem_of(r, 409)
        async with http.delete(srv.base + "/v1/orders/NOPE-1", headers=auth(trade)) as r:
            await problem_of(r, 404)
        assert len(await orders(http, srv, read)) == 1  # refusals wrote nothing

        async with http.get(srv.base + "/metrics") as r:
            text = await r.text()
        assert metric(text, "dalal_order_path_seconds_count", '{source="api"}') == 1
        assert metric(
            text, "dalal_http_requests_total",
            '{code="201",handler="/v1/orders",method="POST"}',
        ) == 1  # fmt: skip


BAD_BODIES: list[tuple[str, bytes, str, int, str | None]] = [
    ("malformed", b'{"key": "NSE:RELIANCE",', "application/json", 400, None),
    ("not an object", b"[1, 2]", "application/json", 422, "(body)"),
    ("unknown field", json.dumps({**ORDER, "trigger_prce": "1"}).encode(), "application/json",
     422, "trigger_prce"),
    ("quantity as string", json.dumps({**ORDER, "quantity": "1"}).encode(), "application/json",
     422, "quantity"),
    ("quantity as bool", json.dumps({**ORDER, "quantity": True}).encode(), "application/json",
     422, "quantity"),
    ("price as float", json.dumps({**ORDER, "price": 100.5}).encode(), "application/json", 422,
     "price"),
    ("bad enum", json.dumps({**ORDER, "side": "HOLD"}).encode(), "application/json", 422,
     "side"),
    ("form body", b"key=NSE:RELIANCE", "application/x-www-form-urlencoded", 415, None),
    ("empty", b"", "application/json", 400, None),
]  # fmt: skip


async def test_bad_bodies_get_the_right_status_and_write_nothing() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        trade, read = srv.key(Scope.TRADE), srv.key(Scope.READ)
        for name, data, ctype, status, field in BAD_BODIES:
            headers = {**auth(trade), "Content-Type": ctype}
            async with http.post(srv.base + "/v1/orders", data=data, headers=headers) as r:
                body = await problem_of(r, status)
            if field is not None:
                assert field in [e["field"] for e in body["errors"]], (name, body)
        huge = json.dumps({**ORDER, "tag": "x" * 70_000}).encode()
        headers = {**auth(trade), "Content-Type": "application/json"}
        async with http.post(srv.base + "/v1/orders", data=huge, headers=headers) as r:
            await problem_of(r, 413)
        assert await orders(http, srv, read) == []
        async with http.get(srv.base + "/livez") as r:
            assert r.status == 200  # still serving


async def test_rate_limit_answers_429_with_retry_after() -> None:
    options = ServerOptions(rate=1.0, burst=3)
    async with running_server(options) as srv, aiohttp.ClientSession() as http:
        read, other = srv.key(Scope.READ), srv.key(Scope.READ, name="other")
        statuses = []
        for _ in range(4):
            async with http.get(srv.base + "/v1/positions", headers=auth(read)) as r:
                statuses.append(r.status)
                if r.status == 429:
                    await problem_of(r, 429)
                    assert r.headers["Retry-After"] == "1"
        assert statuses == [200, 200, 200, 429]
        async with http.get(srv.base + "/v1/positions", headers=auth(other)) as r:
            assert r.status == 200  # another key has its own bucket
        async with http.get(srv.base + "/metrics") as r:
            text = await r.text()
        assert metric(text, "dalal_rate_limited_total", '{cause="key_rate"}') == 1


async def test_ten_failures_block_the_address_even_for_a_good_key() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        good = srv.key(Scope.READ)
        url = srv.base + "/v1/positions"
        for i in range(10):
            async with http.get(url, headers=auth(f"dk_{i:012x}_" + "A" * 43)) as r:
                await problem_of(r, 401)
        async with http.get(url, headers=auth(good)) as r:
            await problem_of(r, 429)
            assert 55 <= int(r.headers["Retry-After"]) <= 60
        async with http.get(srv.base + "/livez") as r:
            assert r.status == 200  # probes stay open for the supervisor
        blocked = srv.events("api.address_blocked")
        assert blocked == [{"address": "127.0.0.1", "seconds": 60.0}]
        assert len(srv.events("api.auth_failure")) == 10  # the blocked request is not audited
        async with http.get(srv.base + "/metrics") as r:
            text = await r.text()
        assert metric(text, "dalal_blocked_addresses") == 1
        assert metric(text, "dalal_auth_failures_total", '{reason="unknown"}') == 10
        assert metric(text, "dalal_address_blocks_total") == 1


async def test_killswitch_cancels_squares_off_and_halts() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        trade = srv.key(Scope.TRADE)
        async with http.post(srv.base + "/v1/orders", json=ORDER,
                             headers=order_headers(trade)) as r:  # fmt: skip
            oid = (await r.json())["order_id"]
        flatten = {"square_off": True, "reason": "test"}
        async with http.post(srv.base + "/v1/killswitch", json=flatten,
                             headers=auth(trade)) as r:  # fmt: skip
            assert r.status == 200, await r.text()
            body = await r.json()
        assert body["mode"] == "risk" and body["halted"] is True
        assert body["cancelled"] == [oid] and body["failed"] == []
        async with http.post(srv.base + "/v1/orders", json=ORDER,
                             headers=order_headers(trade)) as r:  # fmt: skip
            refused = await problem_of(r, 409)
        assert refused["rule"] == "trading_state" and "HALTED" in refused["detail"]


async def _raw(host: str, port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection(host, port)


async def test_slow_clients_are_dropped_while_others_are_served() -> None:
    options = ServerOptions(header_timeout=1.0, body_timeout=1.0)
    async with running_server(options) as srv, aiohttp.ClientSession() as http:
        host, port = srv.base.removeprefix("http://").split(":")
        trade = srv.key(Scope.TRADE)

        async def drip_headers() -> float:
            reader, writer = await _raw(host, int(port))
            loop = asyncio.get_running_loop()
            started = loop.time()
            writer.write(b"GET /livez HTTP/1.1\r\nHost: x\r\n")
            try:
                for _ in range(100):  # one header byte every 0.1 s: never a complete head
                    writer.write(b"X")
                    await writer.drain()
                    if reader.at_eof():
                        break
                    await asyncio.sleep(0.1)
                    if await _closed(reader):
                        break
            except ConnectionError:
                pass
            writer.close()
            return loop.time() - started

        async def drip_body() -> bytes:
            reader, writer = await _raw(host, int(port))
            head = (f"POST /v1/orders HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {trade}\r\n"
                    "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n")  # fmt: skip
            writer.write(head.encode())
            for _ in range(30):
                try:
                    writer.write(b" ")
                    await writer.drain()
                except ConnectionError:
                    break
                await asyncio.sleep(0.1)
                if reader.at_eof() or await _closed(reader, peek=False):
                    break
            data = await reader.read()
            writer.close()
            return data

        async def served_meanwhile() -> list[float]:
            loop = asyncio.get_running_loop()
            times = []
            for _ in range(10):
                t0 = loop.time()
                async with http.get(srv.base + "/livez") as r:
                    assert r.status == 200
                times.append(loop.time() - t0)
                await asyncio.sleep(0.1)
            return times

        header_time, body_answer, times = await asyncio.gather(
            drip_headers(), drip_body(), served_meanwhile()
        )
        assert header_time < 3.0, f"header dripper kept for {header_time:.1f} s"
        assert body_answer.startswith(b"HTTP/1.1 408"), body_answer[:200]
        assert b"Connection: close" in body_answer or b"connection: close" in body_answer.lower()
        assert max(times) < 0.5, times


async def _closed(reader: asyncio.StreamReader, *, peek: bool = True) -> bool:
    """True once the server has answered or closed (a read returns within 10 ms)."""
    try:
        data = await asyncio.wait_for(reader.read(1 if peek else 65536), 0.01)
    except TimeoutError:
        return False
    if data:
        reader.feed_data(data)  # put it back for the final read
        reader.feed_eof()
    return True
