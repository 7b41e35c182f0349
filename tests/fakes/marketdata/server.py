"""The one loopback server behind every market-data fake, with faults a test can inject."""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from services.calendar import IST

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeMarketData:
    """Yahoo, NSE (website and archives), Alpha Vantage and Polygon on one port.

    ``now`` is the fake's wall clock (what "the last 30 days" is measured from).
    ``fault(host, kind, times)`` makes the next ``times`` requests to ``host`` fail:
    "429", "403", "500", "html", "empty", "nan", "shift", "note" (Alpha Vantage quota),
    "garbage" (an unreadable body).
    """

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 20, 18, 0, tzinfo=IST)
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, dict[str, str]]] = []
        self._faults: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None
        self.port = 0
        from tests.fakes.marketdata import alphavantage, nse, polygon, yahoo

        self.yahoo = yahoo.FakeYahoo(self)
        self.nse = nse.FakeNse(self)
        self.alphavantage = alphavantage.FakeAlphaVantage(self)
        self.polygon = polygon.FakePolygon(self)

    # -- test controls ---------------------------------------------------------------------
    def url(self, host: str) -> str:
        return f"http://127.0.0.1:{self.port}/{host}"

    def fault(self, host: str, kind: str, times: int = 1) -> None:
        with self._lock:
            self._faults.setdefault(host, deque()).extend([kind] * times)

    def take_fault(self, host: str) -> str | None:
        with self._lock:
            queue = self._faults.get(host)
            return queue.popleft() if queue else None

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def count(self, host: str, path_part: str = "") -> int:
        return sum(n for k, n in self.requests.items() if k.startswith(host) and path_part in k)

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> FakeMarketData:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(ready,), daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("fake market data did not start")
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)

        async def boot() -> None:
            app = web.Application()
            app.router.add_route("*", "/{host}/{path:.*}", self._dispatch)
            self._runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            self.port = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]

        loop.run_until_complete(boot())
        ready.set()
        loop.run_forever()
        loop.close()

    def stop(self) -> None:
        loop = self._loop
        if loop is None:
            return
        runner = self._runner

        async def shutdown() -> None:
            if runner is not None:
                await runner.cleanup()

        with contextlib.suppress(Exception):
            asyncio.run_coroutine_threadsafe(shutdown(), loop).result(5)
        loop.call_soon_threadsafe(loop.stop)
        if self._thread is not None:
            self._thread.join(5)
        self._loop = None

    def __enter__(self) -> FakeMarketData:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- routing ---------------------------------------------------------------------------
    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        host = request.match_info["host"]
        path = "/" + request.match_info["path"]
        with self._lock:
            self.requests[host + path] += 1
            self.log.append((host + path, dict(request.query)))
        handlers: dict[str, Any] = {
            "fc.yahoo.com": self.yahoo, "query1.finance.yahoo.com": self.yahoo,
            "query2.finance.yahoo.com": self.yahoo, "www.nseindia.com": self.nse,
            "nsearchives.nseindia.com": self.nse, "www.alphavantage.co": self.alphavantage,
            "api.polygon.io": self.polygon,
        }
        fake = handlers.get(host)
        if fake is None:
            return web.Response(status=404, text=f"no fake for {host}")
        response: web.StreamResponse = await fake.handle(request, host, path)
        return response


def html_page() -> web.Response:
    return web.Response(
        status=200, content_type="text/html",
        text="<html><head><title>Just a moment...</title></head><body>Access denied</body></html>",
    )
