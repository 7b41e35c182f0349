"""Yahoo Finance as yfinance sees it: the cookie host, the crumb, and ``/v8/finance/chart``.

The chart answer has Yahoo's shape (``chart.result[0]`` with ``meta``, ``timestamp`` and
``indicators.quote[0]``; ``tradingPeriods`` on intraday requests; ``adjclose`` on daily
ones), float32 prices, and Yahoo's own refusals: more than 8 days of 1m per request, or a
range older than the interval's window, is a 422 with Yahoo's description.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.calendar import IST, default_calendar
from tests.fakes.marketdata.data import f32, ohlcv, session_starts
from tests.fakes.marketdata.server import html_page

if TYPE_CHECKING:
    from tests.fakes.marketdata.server import FakeMarketData

INTERVALS = {"1m": 60, "2m": 120, "5m": 300, "15m": 900, "30m": 1800, "60m": 3600,
             "90m": 5400, "1h": 3600, "1d": 86_400}
WINDOWS = {"1m": 30, "2m": 60, "5m": 60, "15m": 60, "30m": 60, "60m": 730, "90m": 60,
           "1h": 730}
CRUMB = "fAkEcRuMb.1"


def _error(status: int, code: str, description: str) -> web.Response:
    return web.json_response(
        {"chart": {"result": None, "error": {"code": code, "description": description}}},
        status=status,
    )


def _period(start: int, end: int) -> dict[str, Any]:
    return {"timezone": "IST", "start": start, "end": end, "gmtoffset": 19800}


class FakeYahoo:
    def __init__(self, server: FakeMarketData) -> None:
        self.server = server
        self.unknown = {"NOSUCH.NS"}

    async def handle(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        if host == "fc.yahoo.com":
            response = web.Response(status=404, text="")
            response.set_cookie("A3", "d=AQABBfake&S=AQAAAfake", domain=".yahoo.com")
            return response
        if path == "/v1/test/getcrumb":
            return web.Response(text=CRUMB, content_type="text/plain")
        if path.startswith("/v8/finance/chart/"):
            return self._chart(request, path.rsplit("/", 1)[1])
        return web.Response(status=404, text="Not Found")

    def _chart(self, request: web.Request, symbol: str) -> web.StreamResponse:
        fault = self.server.take_fault("yahoo")
        if fault == "429":
            return web.Response(status=429, text="Too Many Requests")
        if fault == "html":
            return html_page()
        if fault == "500":
            return web.Response(status=500, text="Will be right back")
        if symbol in self.unknown or not (symbol.endswith((".NS", ".BO")) or
                                           symbol.startswith("^")):
            return _error(404, "Not Found", "No data found, symbol may be delisted")
        q = request.query
        interval = q.get("interval", "1d")
        seconds = INTERVALS.get(interval)
        if seconds is None:
            return _error(400, "Bad Request", f"Invalid input - interval={interval} is not "
                                              "supported.")
        now = self.server.now
        if "period1" in q:
            p1, p2 = int(q["period1"]), int(q.get("period2", now.timestamp()))
        else:  # range=1d: the timezone probe
            p2 = int(now.timestamp())
            p1 = p2 - 5 * 86_400
        if interval == "1m" and p2 - p1 > 8 * 86_400:
            return _error(422, "Unprocessable Entity", "Only 8 days worth of 1m granularity "
                                                       "data are allowed to be fetched per "
                                                       "request.")
        window = WINDOWS.get(interval)
        if window is not None and p1 < now.timestamp() - window * 86_400:
            return _error(422, "Unprocessable Entity",
                          f"{interval} data not available for startTime={p1} and "
                          f"endTime={p2}. The requested range must be within the last "
                          f"{window} days.")
        start = datetime.fromtimestamp(p1, UTC)
        end = min(datetime.fromtimestamp(p2, UTC), now)
        starts = list(session_starts(start, end, seconds))
        if "period1" not in q:
            starts = starts[-1:]
        return self._answer(symbol, interval, seconds, starts, fault)

    def _answer(
        self, symbol: str, interval: str, seconds: int, starts: list[datetime], fault: str | None
    ) -> web.Response:
        stamps = [int(s.timestamp()) for s in starts]
        bars = [ohlcv(symbol, t, seconds) for t in stamps]
        shift = 19_800 if fault == "shift" else 0  # IST wall times labelled as UTC
        stamps = [t + shift for t in stamps]
        quote: dict[str, list[Any]] = {
            "open": [f32(b[0]) for b in bars], "high": [f32(b[1]) for b in bars],
            "low": [f32(b[2]) for b in bars], "close": [f32(b[3]) for b in bars],
            "volume": [0 if symbol.startswith("^") else b[4] for b in bars],
        }
        if fault == "nan" and bars:
            quote["close"][len(bars) // 2] = None
            quote["open"][len(bars) // 2] = None
        last = bars[-1][3] if bars else 1000.0
        now = int(self.server.now.timestamp())
        day = self.server.now.astimezone(IST).date()
        reg = (int(datetime.combine(day, datetime.min.time(), IST).timestamp()) + 33_300)
        meta: dict[str, Any] = {
            "currency": "INR", "symbol": symbol,
            "exchangeName": "NSI" if not symbol.endswith(".BO") else "BSE",
            "fullExchangeName": "NSE" if not symbol.endswith(".BO") else "BSE",
            "instrumentType": "INDEX" if symbol.startswith("^") else "EQUITY",
            "firstTradeDate": 820467900, "regularMarketTime": now, "hasPrePostMarketData": False,
            "gmtoffset": 19800, "timezone": "IST", "exchangeTimezoneName": "Asia/Kolkata",
            "regularMarketPrice": f32(last), "chartPreviousClose": f32(last), "priceHint": 2,
            "currentTradingPeriod": {
                "pre": _period(reg - 900, reg), "regular": _period(reg, reg + 22_500),
                "post": _period(reg + 22_500, reg + 22_500),
            },
            "dataGranularity": interval, "range": "",
            "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd",
                            "max"],
        }
        result: dict[str, Any] = {"meta": meta, "timestamp": stamps,
                                  "indicators": {"quote": [quote]}}
        if fault == "empty":
            result = {"meta": meta, "indicators": {"quote": [{}]}}
        if seconds < 86_400:
            days = sorted({s.astimezone(IST).date() for s in starts})
            periods = []
            for d in days:
                session = default_calendar().session(d)
                if session is not None:
                    periods.append([_period(int(session.opens_at.timestamp()) + shift,
                                            int(session.closes_at.timestamp()) + shift)])
            meta["tradingPeriods"] = periods or [[_period(reg, reg + 22_500)]]
        elif fault != "empty":
            result["indicators"]["adjclose"] = [{"adjclose": [c * 0.98 if c else c
                                                               for c in quote["close"]]}]
        body = json.dumps({"chart": {"result": [result], "error": None}})
        return web.Response(text=body, content_type="application/json")

