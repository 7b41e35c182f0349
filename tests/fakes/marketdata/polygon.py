"""Polygon's aggregates (``/v2/aggs/ticker/{T}/range/{n}/{span}/{from}/{to}``): bearer key,
millisecond UTC times, ``next_url`` paging, and its 401/403/429 answers."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from tests.fakes.marketdata.data import ohlcv

if TYPE_CHECKING:
    from tests.fakes.marketdata.server import FakeMarketData

KEY = "PGFAKEKEY456"
SPANS = {"second": 1, "minute": 60, "hour": 3600, "day": 86_400}
PAGE = 5000


class FakePolygon:
    def __init__(self, server: FakeMarketData) -> None:
        self.server = server

    async def handle(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {KEY}":
            return web.json_response({"status": "ERROR", "request_id": "r1",
                                      "error": "Unknown API Key"}, status=401)
        fault = self.server.take_fault("polygon")
        if fault == "429":
            return web.json_response({"status": "ERROR", "request_id": "r2",
                                      "error": "You've exceeded the maximum requests per "
                                               "minute, please wait or upgrade your "
                                               "subscription to continue."}, status=429)
        parts = path.strip("/").split("/")
        # v2 aggs ticker {T} range {n} {span} {from} {to}
        if len(parts) != 9 or parts[:3] != ["v2", "aggs", "ticker"]:
            return web.json_response({"status": "NOT_FOUND"}, status=404)
        ticker, n, span, lo, hi = parts[3], int(parts[5]), parts[6], int(parts[7]), int(parts[8])
        if ticker.endswith((".NS", ".BO")) or ticker.startswith(("NSE", "BSE")):
            return web.json_response({"status": "OK", "resultsCount": 0, "results": []})
        if ticker.startswith("I:"):
            return web.json_response({"status": "NOT_AUTHORIZED", "request_id": "r3",
                                      "message": "You are not entitled to this data. Please "
                                                 "upgrade your plan at "
                                                 "https://polygon.io/pricing"}, status=403)
        step = SPANS[span] * n
        offset = int(request.query.get("cursor", "0"))
        rows = []
        t = lo // 1000 // step * step
        if t * 1000 < lo:
            t += step
        while t * 1000 <= hi:
            moment = datetime.fromtimestamp(t, UTC)
            if moment.weekday() < 5 and (span == "day" or 14 <= moment.hour < 21):
                o, h, low, c, v = ohlcv(ticker, t, step)
                rows.append({"v": float(v), "vw": round((h + low) / 2, 4), "o": round(o, 4),
                             "c": round(c, 4), "h": round(h, 4), "l": round(low, 4),
                             "t": t * 1000, "n": v // 10})
            t += step
        page = rows[offset:offset + PAGE]
        body: dict[str, Any] = {"ticker": ticker, "queryCount": len(page),
                                "resultsCount": len(page), "adjusted": False, "results": page,
                                "status": "OK", "request_id": "r4", "count": len(page)}
        if offset + PAGE < len(rows):
            body["next_url"] = str(request.url.with_query({"cursor": str(offset + PAGE)}))
        return web.json_response(body)


