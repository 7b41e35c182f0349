"""Alpha Vantage's ``/query``: TIME_SERIES_DAILY JSON for ``SYMBOL.BSE``, its quota notes
(HTTP 200 with ``Note``/``Information``), and ``Error Message`` for an unknown symbol."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from aiohttp import web

from services.calendar import IST, default_calendar
from tests.fakes.marketdata.data import ohlcv

if TYPE_CHECKING:
    from tests.fakes.marketdata.server import FakeMarketData

KEY = "AVFAKEKEY123"
KNOWN = {"RELIANCE.BSE", "TCS.BSE", "INFY.BSE"}
NOTE = ("Thank you for using Alpha Vantage! Our standard API rate limit is 25 requests per "
        "day. Please subscribe to any of the premium plans at "
        "https://www.alphavantage.co/premium/ to instantly remove all daily rate limits.")


class FakeAlphaVantage:
    def __init__(self, server: FakeMarketData) -> None:
        self.server = server
        self.daily_limit = 25
        self.used = 0

    async def handle(self, request: web.Request, host: str, path: str) -> web.StreamResponse:
        q = request.query
        fault = self.server.take_fault("alphavantage")
        if q.get("apikey") != KEY:
            return web.json_response({"Error Message": "the parameter apikey is invalid or "
                                                       "missing."})
        self.used += 1
        if fault == "note" or self.used > self.daily_limit:
            return web.json_response({"Information": NOTE})
        if fault == "html":
            return web.Response(text="<html>maintenance</html>", content_type="text/html")
        symbol = q.get("symbol", "")
        if q.get("function") != "TIME_SERIES_DAILY" or symbol not in KNOWN:
            return web.json_response({"Error Message": "Invalid API call. Please retry or "
                                                       "visit the documentation "
                                                       "(https://www.alphavantage.co/"
                                                       "documentation/) for TIME_SERIES_DAILY."})
        series: dict[str, Any] = {}
        day = self.server.now.astimezone(IST).date()
        while len(series) < 100:
            session = default_calendar().session(day)
            if session is not None and session.closes_at <= self.server.now:
                o, h, lo, c, v = ohlcv(symbol, session.opens_at.timestamp(), 22_500)
                series[day.isoformat()] = {"1. open": f"{o:.4f}", "2. high": f"{h:.4f}",
                                           "3. low": f"{lo:.4f}", "4. close": f"{c:.4f}",
                                           "5. volume": str(v * 10)}
            day -= timedelta(days=1)
        return web.json_response({
            "Meta Data": {"1. Information": "Daily Prices (open, high, low, close) and Volumes",
                          "2. Symbol": symbol, "3. Last Refreshed": next(iter(series)),
                          "4. Output Size": "Compact", "5. Time Zone": "US/Eastern"},
            "Time Series (Daily)": series,
        })
