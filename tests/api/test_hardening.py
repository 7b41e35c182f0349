"""Reviewer's findings on the headless server: proxied /metrics, blocking database work,
and the model routes of a bundle without scikit-learn."""

from __future__ import annotations

import asyncio
import sys
import threading
import time

import aiohttp
import pytest

from app.headless import ServerOptions
from app.settings import Settings
from services.apikeys import ApiKeyStore, DatabaseConnection, Scope
from services.apikeys.tokens import new_token
from services.storage import Database
from tests.api.server import running_server
from tests.api.test_api_server import auth, problem_of
from tests.models_app.conftest import database  # noqa: F401 (fixture)

DEPLOY = {"model_id": "mom", "symbol": "NSE:INFY", "timeframe": "1m",
          "model_type": "logistic_regression", "environment": "staging"}
PROXY_HEADERS = [
    {"X-Forwarded-For": "203.0.113.9"},
    {"X-Real-IP": "203.0.113.9"},
    {"Forwarded": "for=203.0.113.9;proto=https"},
]


async def test_metrics_relayed_by_a_local_proxy_need_a_read_key() -> None:
    async with running_server() as srv, aiohttp.ClientSession() as http:
        async with http.get(srv.base + "/metrics") as r:
            assert r.status == 200  # Prometheus on the same host
        for headers in PROXY_HEADERS:
            async with http.get(srv.base + "/metrics", headers=headers) as r:
                await problem_of(r, 401)
        read = srv.key(Scope.READ)
        headers = {**PROXY_HEADERS[0], **auth(read)}
        async with http.get(srv.base + "/metrics", headers=headers) as r:
            assert r.status == 200 and "dalal_" in await r.text()


async def test_metrics_require_key_asks_loopback_too() -> None:
    async with running_server(ServerOptions(metrics_require_key=True)) as srv, \
            aiohttp.ClientSession() as http:  # fmt: skip
        async with http.get(srv.base + "/metrics") as r:
            await problem_of(r, 401)
        async with http.get(srv.base + "/metrics", headers=auth(srv.key(Scope.TRADE))) as r:
            await problem_of(r, 403)
        async with http.get(srv.base + "/metrics", headers=auth(srv.key(Scope.READ))) as r:
            assert r.status == 200


def test_metrics_require_key_is_a_headless_option() -> None:
    from app.cli import build_parser

    args = build_parser().parse_args(["headless", "--metrics-require-key"])
    assert args.metrics_require_key is True
    assert build_parser().parse_args(["headless"]).metrics_require_key is False


async def test_model_routes_without_scikit_learn_answer_409(
    database: Database,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with running_server(ServerOptions(database=database)) as srv, \
            aiohttp.ClientSession() as http:  # fmt: skip
        models = srv.key(Scope.READ, Scope.MODELS)
        # The installed bundle without the ml extra: scikit-learn cannot be imported. It is
        # imported only when a model is trained or loaded.
        monkeypatch.setitem(sys.modules, "sklearn", None)
        for name in [m for m in sys.modules if m.startswith("sklearn.")]:
            monkeypatch.delitem(sys.modules, name)
        async with http.post(srv.base + "/v1/deployment/deploy", json=DEPLOY,
                             headers=auth(models)) as r:  # fmt: skip
            problem = await problem_of(r, 409)
        assert "ml extra (scikit-learn)" in problem["detail"]


async def test_a_locked_database_does_not_stall_the_event_loop(
    database: Database,  # noqa: F811
) -> None:
    store = ApiKeyStore(DatabaseConnection(database))
    settings = Settings(ticks_per_second=50, models_enabled=False)
    options = ServerOptions(database=database)
    async with running_server(options, store=store, capture_audit=False, settings=settings) \
            as srv, aiohttp.ClientSession() as http:  # fmt: skip
        read = srv.key(Scope.READ)
        async with http.get(srv.base + "/v1/orders", headers=auth(read)) as r:
            assert r.status == 200
        async with http.get(srv.base + "/readyz") as r:
            assert (await r.json())["components"]["database"]["state"] == "open"

        held = threading.Event()

        def hold_lock() -> None:
            with database.transaction():  # a long journal write in another thread
                held.set()
                time.sleep(1.0)

        holder = threading.Thread(target=hold_lock)
        holder.start()
        await asyncio.to_thread(held.wait)
        # An unknown key misses the cache: its look-up waits for the lock, off the loop, and
        # its failure is audited (a database write) without waiting either.
        stranger = asyncio.create_task(
            http.get(srv.base + "/v1/orders", headers=auth(str(new_token())))
        )
        await asyncio.sleep(0.05)
        assert not stranger.done()
        for path in ("/livez", "/readyz", "/metrics", "/livez"):
            started = time.perf_counter()
            async with http.get(srv.base + path) as r:
                await r.read()
                assert r.status in (200, 503)
            assert time.perf_counter() - started < 0.1, path
        async with await stranger as r:
            await problem_of(r, 401)
        await asyncio.to_thread(holder.join)

        async def audited() -> list[str]:
            return [row.kind for row in await asyncio.to_thread(database.audit.rows)]

        for _ in range(50):
            if "api.auth_failure" in await audited():
                break
            await asyncio.sleep(0.05)
        assert "api.auth_failure" in await audited()  # in the profile's hash-chained log
