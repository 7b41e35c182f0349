"""The one loopback server behind every market-data fake, with faults a test can inject."""

from __future__ import annotations

import threading
from collections import Counter, deque
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from aiohttp import web

from services.calendar import IST
from tests.fakes.loopback import LoopbackServer

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FakeMarketData(LoopbackServer):
    """Yahoo, NSE (website and archives), Alpha Vantage and Polygon on one port.

    ``now`` is the fake's wall clock (what "the last 30 days" is measured from).
    ``fault(host, kind, times)`` makes the next ``times`` requests to ``host`` fail:
    "429", "403", "500", "html", "empty", "nan", "shift", "note" (Alpha Vantage quota),
    "garbage" (an unreadable body).
    """

    label = "fake market data"

    def __init__(self, *, now: datetime | None = None) -> None:
        self.now = now or datetime(2026, 3, 20, 18, 0, tzinfo=IST)
        self.requests: Counter[str] = Counter()
        self.log: list[tuple[str, dict[str, str]]] = []
        self._faults: dict[str, deque[str]] = {}
        self._lock = threading.Lock()
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
    def build_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{host}/{path:.*}", self._dispatch)
        return app

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
