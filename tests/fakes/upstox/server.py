"""A local Upstox that the official ``upstox_client`` SDK talks to in tests.

Wire formats follow the SDK's own models and research/brokers.md §1.2, §2.2, §9.2:

* REST JSON on one port, reached through ``Configuration.host`` and ``order_host`` (the SDK
  sends ``/order/place|modify|cancel`` to the second; both point here). Success is
  ``{"status": "success", "data": ..., "metadata"?}``; an error is the gateway's
  ``{"status": "error", "errors": [{"errorCode": "UDAPI...", "message", ...}]}`` with its HTTP
  code. Every record keeps the SDK models' enums, so a slip here makes the SDK raise.
* ``Authorization: Bearer`` on every call but the login leg and the master file; v2 calls
  must carry ``Api-Version``. ``X-Algo-Name`` is checked against the registered algo names.
* OAuth: ``/v2/login/authorization/dialog`` redirects to the app's redirect URI with a
  single-use ``code`` and the caller's ``state``; ``/v2/login/authorization/token`` trades it.
* The instrument master ``complete.json.gz`` (tick sizes in paise, expiries in epoch ms).
* Feed V3: ``/v3/feed/market-data-feed/authorize`` hands out a **single-use** WebSocket URL;
  the socket first sends a ``market_info`` frame, answers a ``sub`` (JSON in a *binary*
  frame) with an ``initial_feed`` snapshot and then ``live_feed`` frames, all real protobuf
  ``FeedResponse`` messages built with the SDK's bundled ``MarketDataFeedV3_pb2``.
* The portfolio stream (``/v2/feed/portfolio-stream-feed/authorize``, single-use too) sends
  one JSON text message per order transition.

Faults (``inject``) are one-shot per route. The server runs on its own loop in a thread so
the blocking SDK (in the adapter's worker threads) and async tests can share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import itertools
import json
import math
import secrets
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from aiohttp import WSMsgType, web
from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as pb

from tests.fakes.loopback import LoopbackServer

IST = ZoneInfo("Asia/Kolkata")
TS = "%Y-%m-%d %H:%M:%S"

FAULTS = frozenset(
    {
        "timeout_before",  # hang without recording anything
        "timeout_after",  # record the order, then hang past the client's timeout
        "drop_after",  # record the order, then cut the connection without an answer
        "margin",  # RMS: insufficient funds
        "429",
        "500",
        "503_html",
        "token",  # 401 UDAPI100050
        "ip",  # UDAPI1154 static IP not whitelisted
        "algo",  # UDAPI1156
        "blocked",  # UDAPI1158
        "reused",  # feed-authorize hands out a URL that was already used
    }
)
WORKING = ("open", "trigger pending", "after market order req received")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("I", "D", "MTF")
VALIDITIES = ("DAY", "IOC")


@dataclass
class Journal:
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))

    def headers(self, method: str, prefix: str) -> list[dict[str, str]]:
        return [h for m, p, h in self.requests if m == method and p.startswith(prefix)]


class UpstoxError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _epoch_ms(day: date) -> int:
    return int(datetime.combine(day, time(14, 30), IST).timestamp() * 1000)


def _next_tuesday(today: date) -> date:
    return today + timedelta(days=(1 - today.weekday()) % 7 or 7)


def default_instruments(today: date | None = None) -> list[dict[str, Any]]:
    """Records shaped like Upstox's ``complete.json.gz`` (tick sizes in paise)."""
    today = today or datetime.now(IST).date()
    weekly = _next_tuesday(today)
    monthly = weekly + timedelta(days=28)
    return [
        {
            "segment": "NSE_EQ",
            "name": "INFOSYS LIMITED",
            "exchange": "NSE",
            "isin": "INE009A01021",
            "instrument_type": "EQ",
            "instrument_key": "NSE_EQ|INE009A01021",
            "lot_size": 1,
            "freeze_quantity": 100000.0,
            "exchange_token": "1594",
            "tick_size": 10.0,
            "trading_symbol": "INFY",
            "short_name": "Infosys",
            "security_type": "NORMAL",
            "qty_multiplier": 1.0,
            "last_price": "1573.70",
        },
        {
            "segment": "NSE_EQ",
            "name": "STATE BANK OF INDIA",
            "exchange": "NSE",
            "isin": "INE062A01020",
            "instrument_type": "EQ",
            "instrument_key": "NSE_EQ|INE062A01020",
            "lot_size": 1,
            "freeze_quantity": 100000.0,
            "exchange_token": "3045",
            "tick_size": 5.0,
            "trading_symbol": "SBIN",
            "qty_multiplier": 1.0,
            "last_price": "812.40",
        },
        {
            "segment": "BSE_EQ",
            "name": "STATE BANK OF INDIA",
            "exchange": "BSE",
            "isin": "INE062A01020",
            "instrument_type": "A",
            "instrument_key": "BSE_EQ|INE062A01020",
            "lot_size": 1,
            "freeze_quantity": 100000.0,
            "exchange_token": "500112",
            "tick_size": 5.0,
            "trading_symbol": "SBIN",
            "qty_multiplier": 1.0,
            "last_price": "812.35",
        },
        {
            "segment": "NSE_INDEX",
            "name": "Nifty 50",
            "exchange": "NSE",
            "instrument_type": "INDEX",
            "instrument_key": "NSE_INDEX|Nifty 50",
            "exchange_token": "26000",
            "trading_symbol": "NIFTY",
            "last_price": "24350.15",
        },
        {
            "segment": "NSE_FO",
            "name": "NIFTY",
            "exchange": "NSE",
            "expiry": _epoch_ms(monthly),
            "weekly": False,
            "instrument_key": "NSE_FO|35001",
            "exchange_token": "35001",
            "trading_symbol": f"NIFTY FUT {monthly:%d %b %y}".upper(),
            "tick_size": 10.0,
            "lot_size": 75,
            "instrument_type": "FUT",
            "freeze_quantity": 1800.0,
            "underlying_key": "NSE_INDEX|Nifty 50",
            "underlying_type": "INDEX",
            "underlying_symbol": "NIFTY",
            "minimum_lot": 75,
            "qty_multiplier": 1.0,
            "last_price": "24410.00",
        },
        {
            "segment": "NSE_FO",
            "name": "NIFTY",
            "exchange": "NSE",
            "expiry": _epoch_ms(weekly),
            "weekly": True,
            "instrument_key": "NSE_FO|35002",
            "exchange_token": "35002",
            "trading_symbol": f"NIFTY 24500 CE {weekly:%d %b %y}".upper(),
            "tick_size": 5.0,
            "lot_size": 75,
            "instrument_type": "CE",
            "freeze_quantity": 1800.0,
            "underlying_key": "NSE_INDEX|Nifty 50",
            "underlying_type": "INDEX",
            "underlying_symbol": "NIFTY",
            "strike_price": 24500.0,
            "minimum_lot": 75,
            "qty_multiplier": 1.0,
            "last_price": "120.50",
        },
        {
            "segment": "NSE_FO",
            "name": "NIFTY",
            "exchange": "NSE",
            "expiry": _epoch_ms(today - timedelta(days=7)),
            "weekly": True,
            "instrument_key": "NSE_FO|34001",
            "exchange_token": "34001",
            "trading_symbol": "NIFTY 24000 PE EXPIRED",
            "tick_size": 5.0,
            "lot_size": 75,
            "instrument_type": "PE",
            "freeze_quantity": 1800.0,
            "underlying_symbol": "NIFTY",
            "strike_price": 24000.0,
            "last_price": "1.00",
        },
        {
            "segment": "MCX_FO",
            "name": "GOLDPETAL",
            "exchange": "MCX",
            "expiry": _epoch_ms(monthly),
            "instrument_key": "MCX_FO|228213",
            "exchange_token": "228213",
            "trading_symbol": "GOLDPETAL FUT",
            "tick_size": 100.0,
            "lot_size": 1,
            "instrument_type": "FUT",
            "freeze_quantity": 5000.0,
            "underlying_symbol": "GOLDPETAL",
            "last_price": "7400.00",
        },
        {
            "segment": "BCD_FO",
            "name": "USDINR",
            "exchange": "BSE",
            "expiry": _epoch_ms(monthly),
            "instrument_key": "BCD_FO|7001",
            "exchange_token": "7001",
            "trading_symbol": "USDINR FUT",
            "tick_size": 0.25,
            "lot_size": 1,
            "instrument_type": "FUT",
            "underlying_symbol": "USDINR",
            "last_price": "84.1200",
        },
    ]


def _num(value: Decimal) -> float | int:
    return int(value) if value == value.to_integral_value() else float(value)


def _ok(data: Any, **extra: Any) -> web.Response:
    return web.json_response({"status": "success", "data": data, **extra})


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response(
        {
            "status": "error",
            "errors": [
                {
                    "errorCode": code,
                    "message": message,
                    "propertyPath": None,
                    "invalidValue": None,
                    "error_code": code,
                    "property_path": None,
                    "invalid_value": None,
                }
            ],
        },
        status=status,
    )


@dataclass(eq=False)
class _FeedSocket:
    ws: web.WebSocketResponse
    modes: dict[str, str] = field(default_factory=dict)  # instrument key -> ltpc|full|...


class FakeUpstox(LoopbackServer):
    """The fake server and its OMS; a context manager, or call start()/stop()."""

    label = "fake Upstox"

    def __init__(
        self,
        *,
        client_id: str = "fake-client-id",
        client_secret: str = "fake-client-secret",
        access_token: str | None = "fake-access-token",
        hang_seconds: float = 1.5,
        instruments: list[dict[str, Any]] | None = None,
        algo_names: frozenset[str] = frozenset({"dalal-terminal"}),
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.access_tokens: set[str] = {access_token} if access_token else set()
        self.hang_seconds = hang_seconds
        self.instruments: dict[str, dict[str, Any]] = {
            r["instrument_key"]: dict(r) for r in instruments or default_instruments()
        }
        self.prices: dict[str, Decimal] = {
            k: Decimal(r.get("last_price", "100")) for k, r in self.instruments.items()
        }
        self.algo_names = algo_names
        self.redirect_uri = "http://127.0.0.1:9/upstox/callback"
        self.auth_codes: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.trades: list[dict[str, Any]] = []
        self.positions: list[dict[str, Any]] = []
        self.holdings: list[dict[str, Any]] = [
            {
                "isin": "INE062A01020",
                "cnc_used_quantity": 0,
                "collateral_type": "WC",
                "company_name": "STATE BANK OF INDIA",
                "haircut": 0.2,
                "product": "D",
                "quantity": 10,
                "tradingsymbol": "SBIN",
                "trading_symbol": "SBIN",
                "last_price": 812.4,
                "close_price": 805.0,
                "pnl": 1109.0,
                "day_change": 7.4,
                "day_change_percentage": 0.919,
                "instrument_token": "NSE_EQ|INE062A01020",
                "average_price": 701.5,
                "collateral_quantity": 0,
                "collateral_update_quantity": 0,
                "t1_quantity": 2,
                "exchange": "NSE",
            }
        ]
        self.available_margin = Decimal("250000")
        self.used_margin = Decimal("0")
        self.journal = Journal()
        self.placed: list[dict[str, Any]] = []  # every place body, as received
        self.modified: list[dict[str, Any]] = []
        self._faults: deque[tuple[str, str]] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        # Feed V3 and the portfolio stream.
        self.feed_codes: set[str] = set()
        self.portfolio_codes: set[str] = set()
        self.used_codes: set[str] = set()
        self.refused_reused = 0
        self.feed_sockets: list[_FeedSocket] = []
        self.portfolio_sockets: list[web.WebSocketResponse] = []
        self.feed_connects = 0
        self.portfolio_connects = 0
        self.feed_requests: list[dict[str, Any]] = []
        self.answer_pings = True
        self.silent = False
        self.gtts: dict[str, dict[str, Any]] = {}
        self.gtt_requests: list[tuple[str, dict[str, Any]]] = []
        # GET /v2/user/ip: the account's registered static IPs (None: not registered).
        self.static_ips: dict[str, str | None] = {"primary_ip": "203.0.113.7", "secondary_ip": None}
        self._sends: set[asyncio.Future[None]] = set()
        self._last_feed_url = ""
        self.segment_status = {"NSE_EQ": pb.NORMAL_OPEN, "NSE_FO": pb.NORMAL_OPEN}

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def instruments_url(self) -> str:
        return f"{self.base_url}/market-quote/instruments/exchange/complete.json.gz"

    @property
    def login_url(self) -> str:
        return f"{self.base_url}/v2/login/authorization/dialog"

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        return app

    async def before_shutdown(self) -> None:
        for sock in [s.ws for s in self.feed_sockets] + self.portfolio_sockets:
            with contextlib.suppress(Exception):
                await sock.close()

    # -- test controls ----------------------------------------------------------------------

    def inject(self, route: str, fault: str) -> None:
        """Make the next request to ``route`` fail with ``fault`` (see ``FAULTS``).

        Routes: ``place``, ``modify``, ``cancel``, ``orders`` (the book), ``history``,
        ``feed-authorize``, ``any``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append((route, fault))

    def expire_session(self) -> None:
        """Upstox's 03:30 IST: every token stops working and open sockets are closed."""
        with self._lock:
            self.access_tokens.clear()

    def issue_auth_code(self) -> str:
        code = secrets.token_urlsafe(6)
        with self._lock:
            self.auth_codes.add(code)
        return code

    def set_price(self, key: str, price: str) -> None:
        with self._lock:
            self.prices[key] = Decimal(price)

    def fill(self, order_id: str, quantity: int | None = None, price: str | None = None) -> None:
        with self._lock:
            order = self.orders[order_id]
            if order["status"] not in WORKING:
                raise ValueError(f"order {order_id} is {order['status']}")
            qty = quantity or order["pending_quantity"]
            fill_price = (
                Decimal(price)
                if price
                else (
                    Decimal(str(order["price"]))
                    if order["price"]
                    else self.prices[order["instrument_token"]]
                )
            )
            self._fill(order, qty, fill_price)

    def live_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self.orders.values()]

    def orders_with_tag(self, tag: str) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self.orders.values() if o.get("tag") == tag]

    # Feed controls (thread-safe: they run on the server's loop).

    def push(self, key: str, price: str | None = None, *, mode: str | None = None) -> int:
        """Send a ``live_feed`` frame for ``key`` to every socket subscribed to it."""
        if price is not None:
            self.set_price(key, price)

        async def send() -> int:
            sent = 0
            for sock in list(self.feed_sockets):
                sock_mode = sock.modes.get(key)
                if sock_mode is None or self.silent:
                    continue
                frame = self.feed_frame(pb.live_feed, {key: mode or sock_mode})
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sock.ws.send_bytes(frame)
                    sent += 1
            return sent

        result: int = self.on_loop(send())
        return result

    def drop_feed(self) -> int:
        """Close every market-data socket abruptly (an exchange-side disconnect)."""

        async def drop() -> int:
            socks = list(self.feed_sockets)
            for sock in socks:
                with contextlib.suppress(Exception):
                    transport = sock.ws._req.transport if sock.ws._req else None
                    if transport is not None:
                        transport.abort()
            return len(socks)

        result: int = self.on_loop(drop())
        return result

    def drop_portfolio(self) -> int:
        async def drop() -> int:
            socks = list(self.portfolio_sockets)
            for ws in socks:
                with contextlib.suppress(Exception):
                    transport = ws._req.transport if ws._req else None
                    if transport is not None:
                        transport.abort()
            return len(socks)

        result: int = self.on_loop(drop())
        return result

    def subscribed(self, *, newest: bool = False) -> dict[str, str]:
        """Instrument key -> mode, over every open socket or only the newest one."""
        with self._lock:
            socks = self.feed_sockets[-1:] if newest else self.feed_sockets
            merged: dict[str, str] = {}
            for sock in socks:
                merged.update(sock.modes)
            return merged

    def silence(self, silent: bool) -> None:
        """Say nothing at all (no frames, no pongs) while keeping the sockets open."""
        with self._lock:
            self.answer_pings = not silent
            self.silent = silent

    # -- protobuf frames --------------------------------------------------------------------

    def _ltpc(self, key: str, msg: Any) -> None:
        price = self.prices[key]
        msg.ltp = float(price)
        msg.ltt = int(datetime.now(IST).timestamp() * 1000)
        msg.ltq = 5
        msg.cp = float(price - Decimal("10"))

    def feed_frame(self, kind: int, keys: dict[str, str]) -> bytes:
        """One ``FeedResponse`` carrying ``keys`` in their modes (``ltpc``/``full``/...)."""
        response = pb.FeedResponse()
        response.type = kind
        response.currentTs = int(datetime.now(IST).timestamp() * 1000)
        for key, mode in keys.items():
            feed = response.feeds[key]
            record = self.instruments.get(key, {})
            if mode == "ltpc":
                self._ltpc(key, feed.ltpc)
                feed.requestMode = pb.ltpc
                continue
            if mode == "option_greeks":
                first = feed.firstLevelWithGreeks
                self._ltpc(key, first.ltpc)
                first.firstDepth.bidQ = 75
                first.firstDepth.bidP = float(self.prices[key] - Decimal("0.05"))
                first.firstDepth.askQ = 150
                first.firstDepth.askP = float(self.prices[key] + Decimal("0.05"))
                greeks = first.optionGreeks
                greeks.delta, greeks.gamma, greeks.theta = 0.52, 0.0021, -12.75
                greeks.vega, greeks.rho = 18.4, 6.1
                first.vtt = 10_000
                first.oi = 5000.0
                first.iv = 0.14
                feed.requestMode = pb.option_greeks
                continue
            price = self.prices[key]
            tick = Decimal(str(record.get("tick_size") or 5.0)) / 100
            if record.get("segment", "").endswith("_INDEX"):
                index = feed.fullFeed.indexFF
                self._ltpc(key, index.ltpc)
                ohlc = index.marketOHLC.ohlc.add()
                ohlc.interval, ohlc.open, ohlc.high = "1d", float(price - 5), float(price + 10)
                ohlc.low, ohlc.close, ohlc.vol = float(price - 10), float(price), 0
                ohlc.ts = int(datetime.combine(date.today(), time(0, 0), IST).timestamp() * 1000)
            else:
                market = feed.fullFeed.marketFF
                self._ltpc(key, market.ltpc)
                for n in range(5):
                    quote = market.marketLevel.bidAskQuote.add()
                    quote.bidQ, quote.bidP = 100 * (n + 1), float(price - (n + 1) * tick)
                    quote.askQ, quote.askP = 90 * (n + 1), float(price + (n + 1) * tick)
                day = market.marketOHLC.ohlc.add()
                day.interval, day.open = "1d", float(price - 5 * tick)
                day.high, day.low = float(price + 10 * tick), float(price - 10 * tick)
                day.close, day.vol = float(price), 125_000
                day.ts = int(datetime.combine(date.today(), time(0, 0), IST).timestamp() * 1000)
                minute = market.marketOHLC.ohlc.add()
                minute.interval, minute.open, minute.high = "I1", float(price), float(price)
                minute.low, minute.close, minute.vol = float(price), float(price), 500
                market.atp = float(price)
                market.vtt = 125_000
                market.oi = 0.0
                market.tbq = 1500.0
                market.tsq = 1700.0
            feed.requestMode = pb.full_d5
        return bytes(response.SerializeToString())

    def market_info_frame(self) -> bytes:
        response = pb.FeedResponse()
        response.type = pb.market_info
        response.currentTs = int(datetime.now(IST).timestamp() * 1000)
        for segment, status in self.segment_status.items():
            response.marketInfo.segmentStatus[segment] = status
        return bytes(response.SerializeToString())

    # -- HTTP plumbing ----------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/v2/login/authorization/dialog", self._dialog)
        r.add_post("/v2/login/authorization/token", self._token)
        r.add_delete("/v2/logout", self._logout)
        r.add_get("/market-quote/instruments/exchange/complete.json.gz", self._master)
        r.add_get("/v2/user/profile", self._profile)
        r.add_get("/v2/user/ip", self._user_ips)
        r.add_get("/v2/user/get-funds-and-margin", self._funds)
        r.add_post("/v3/order/place", self._place)
        r.add_post("/v3/order/gtt/place", self._gtt_place)
        r.add_put("/v3/order/gtt/modify", self._gtt_modify)
        r.add_delete("/v3/order/gtt/cancel", self._gtt_cancel)
        r.add_get("/v3/order/gtt", self._gtt_get)
        r.add_put("/v3/order/modify", self._modify)
        r.add_delete("/v3/order/cancel", self._cancel)
        r.add_get("/v2/order/retrieve-all", self._book)
        r.add_get("/v2/order/details", self._details)
        r.add_get("/v2/order/history", self._order_history)
        r.add_get("/v2/order/trades/get-trades-for-day", self._trades)
        r.add_get("/v2/portfolio/short-term-positions", self._positions)
        r.add_get("/v2/portfolio/long-term-holdings", self._holdings)
        r.add_get(
            "/v3/historical-candle/{key}/{unit}/{interval}/{to_date}/{from_date}", self._candles
        )
        r.add_get("/v3/feed/market-data-feed/authorize", self._feed_authorize)
        r.add_get("/v3/feed/market-data-feed", self._feed_redirect)
        r.add_get("/market-data-feeder/v3/upstox-developer-api/feeds", self._feed_ws)
        r.add_get("/v2/feed/portfolio-stream-feed/authorize", self._portfolio_authorize)
        r.add_get("/portfolio-stream-feeder/v2/feeds", self._portfolio_ws)

    # The v2 endpoints whose SDK methods take the required ``api_version`` header.
    _VERSIONED = frozenset(
        {
            "/v2/order/retrieve-all",
            "/v2/order/history",
            "/v2/order/trades/get-trades-for-day",
            "/v2/portfolio/short-term-positions",
            "/v2/portfolio/long-term-holdings",
            "/v2/user/get-funds-and-margin",
            "/v2/user/profile",
            "/v2/feed/portfolio-stream-feed/authorize",
        }
    )

    # The SDK's HistoryV3Api sends no Authorization header (auth_settings = []).
    _PUBLIC = (
        "/v3/historical-candle/",
        "/v2/login/authorization/",
        "/market-quote/instruments/",
        "/market-data-feeder/",
        "/portfolio-stream-feeder/",
    )

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.journal.requests.append((request.method, request.path, dict(request.headers)))
        try:
            if not request.path.startswith(self._PUBLIC):
                self._authenticate(request)
            return await handler(request)  # type: ignore[no-any-return]
        except UpstoxError as exc:
            return _error(exc.status, exc.code, exc.message)

    def _authenticate(self, request: web.Request) -> None:
        header = request.headers.get("Authorization", "")
        token = header.removeprefix("Bearer ").strip()
        with self._lock:
            valid = token in self.access_tokens
        if not valid:
            raise UpstoxError(401, "UDAPI100050", "Invalid token used to access API")
        if request.path in self._VERSIONED and not request.headers.get("Api-Version"):
            raise UpstoxError(400, "UDAPI100015", "Missing header: Api-Version")

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            for i, (target, fault) in enumerate(self._faults):
                if target in (route, "any"):
                    del self._faults[i]
                    return fault
        return None

    async def _apply_fault(self, fault: str | None) -> web.Response | None:
        if fault is None or fault in ("timeout_after", "drop_after", "reused"):
            return None
        if fault == "timeout_before":
            await asyncio.sleep(self.hang_seconds)
            return _error(504, "UDAPI100500", "Gateway timeout")
        if fault == "429":
            return _error(429, "UDAPI10005", "Too Many Request Sent")
        if fault == "500":
            return _error(500, "UDAPI100500", "Something went wrong, please try again")
        if fault == "503_html":
            return web.Response(
                status=503,
                text="<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>",
                content_type="text/html",
            )
        if fault == "margin":
            return _error(
                400,
                "UDAPI1013",
                "Insufficient funds. Required margin is 15737.00, available margin is 120.50",
            )
        if fault == "token":
            return _error(401, "UDAPI100050", "Invalid token used to access API")
        if fault == "ip":
            return _error(
                403,
                "UDAPI1154",
                "Order placement is not allowed from this IP address. Please place orders "
                "from a registered static IP",
            )
        if fault == "algo":
            return _error(400, "UDAPI1156", "Invalid algo name")
        if fault == "blocked":
            return _error(400, "UDAPI1158", "Order placement is blocked for this market")
        raise AssertionError(fault)

    async def _hang(self) -> None:
        await asyncio.sleep(self.hang_seconds)

    # -- login ------------------------------------------------------------------------------

    async def _dialog(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        if q.get("client_id") != self.client_id or q.get("response_type") != "code":
            raise UpstoxError(400, "UDAPI100068", "Check your 'client_id' and 'redirect_uri'")
        redirect = q.get("redirect_uri") or ""
        params = {"code": self.issue_auth_code()}
        if "state" in q:
            params["state"] = q["state"]
        raise web.HTTPFound(f"{redirect}?{urlencode(params)}")

    async def _token(self, request: web.Request) -> web.Response:
        form = await request.post()
        code = str(form.get("code") or "")
        with self._lock:
            known = code in self.auth_codes
            self.auth_codes.discard(code)  # single use, even when the rest is wrong
        if (
            form.get("client_id") != self.client_id
            or form.get("client_secret") != self.client_secret
        ):
            raise UpstoxError(401, "UDAPI100016", "Invalid Credentials")
        if not known or form.get("grant_type") != "authorization_code":
            raise UpstoxError(400, "UDAPI100057", "Invalid Auth code")
        token = secrets.token_urlsafe(24)
        with self._lock:
            self.access_tokens.add(token)
        return web.json_response(
            {
                "email": "trader@example.com",
                "exchanges": ["NSE", "NFO", "BSE", "BFO", "MCX"],
                "products": ["D", "I", "CO", "MTF"],
                "broker": "UPSTOX",
                "user_id": "AB1234",
                "user_name": "Test Trader",
                "order_types": list(ORDER_TYPES),
                "user_type": "individual",
                "poa": False,
                "is_active": True,
                "access_token": token,
                "extended_token": None,
            }
        )

    async def _logout(self, request: web.Request) -> web.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip()
        with self._lock:
            self.access_tokens.discard(token)
        return _ok(True)

    async def _master(self, request: web.Request) -> web.Response:
        records = [
            {k: v for k, v in r.items() if k != "last_price"} for r in self.instruments.values()
        ]
        body = gzip.compress(json.dumps(records).encode())
        return web.Response(body=body, content_type="application/gzip")

    async def _user_ips(self, request: web.Request) -> web.Response:
        updated = "2026-11-02T10:15:00+05:30"
        ips = dict(self.static_ips)
        return _ok(
            {
                **ips,
                "primary_ip_updated_at": updated if ips.get("primary_ip") else None,
                "secondary_ip_updated_at": updated if ips.get("secondary_ip") else None,
                "access_tokens_invalidated": False,
            }
        )

    async def _profile(self, request: web.Request) -> web.Response:
        return _ok(
            {
                "email": "trader@example.com",
                "exchanges": ["NSE", "NFO", "BSE", "BFO", "MCX"],
                "products": ["D", "I", "CO", "MTF"],
                "broker": "UPSTOX",
                "user_id": "AB1234",
                "user_name": "Test Trader",
                "order_types": list(ORDER_TYPES),
                "user_type": "individual",
                "poa": False,
                "is_active": True,
            }
        )

    async def _funds(self, request: web.Request) -> web.Response:
        segment = {
            "used_margin": _num(self.used_margin),
            "payin_amount": 0,
            "span_margin": 0,
            "adhoc_margin": 0,
            "notional_cash": 0,
            "available_margin": _num(self.available_margin - self.used_margin),
            "exposure_margin": 0,
        }
        return _ok({"equity": segment, "commodity": {**segment, "available_margin": 0}})

    # -- orders -----------------------------------------------------------------------------

    def _now(self) -> str:
        return datetime.now(IST).strftime(TS)

    def _record(self, order: dict[str, Any]) -> None:
        self.history.setdefault(order["order_id"], []).append(dict(order))
        self._broadcast_order(order)

    def _broadcast_order(self, order: dict[str, Any]) -> None:
        message = json.dumps({"update_type": "order", "user_id": "AB1234", **order})
        for ws in list(self.portfolio_sockets):
            if not ws.closed:
                task = asyncio.ensure_future(ws.send_str(message))
                self._sends.add(task)
                task.add_done_callback(self._sends.discard)

    def _fill(self, order: dict[str, Any], qty: int, price: Decimal) -> None:
        order["filled_quantity"] += qty
        order["pending_quantity"] -= qty
        previous = Decimal(str(order["average_price"]))
        filled = order["filled_quantity"]
        order["average_price"] = _num((previous * (filled - qty) + price * qty) / filled)
        order["exchange_timestamp"] = self._now()
        if order["pending_quantity"] == 0:
            order["status"] = "complete"
        self.trades.append(
            {
                "exchange": order["exchange"],
                "product": order["product"],
                "tradingsymbol": order["tradingsymbol"],
                "trading_symbol": order["trading_symbol"],
                "instrument_token": order["instrument_token"],
                "order_type": order["order_type"],
                "transaction_type": order["transaction_type"],
                "quantity": qty,
                "exchange_order_id": order["exchange_order_id"],
                "order_id": order["order_id"],
                "exchange_timestamp": self._now(),
                "average_price": _num(price),
                "trade_id": f"{next(self._trade_ids):08d}",
                "order_ref_id": order["order_ref_id"],
                "order_timestamp": order["order_timestamp"],
            }
        )
        if self._loop is not None and threading.current_thread() is not self._thread:
            self._loop.call_soon_threadsafe(self._record, dict(order))
        else:
            self._record(order)

    def _exchange_word(self, record: dict[str, Any]) -> str:
        segment = record["segment"]
        return {
            "NSE_EQ": "NSE",
            "BSE_EQ": "BSE",
            "NSE_FO": "NFO",
            "BSE_FO": "BFO",
            "MCX_FO": "MCX",
            "NCD_FO": "CDS",
        }.get(segment, "NSE")

    def _check_place(self, body: dict[str, Any], algo: str | None) -> dict[str, Any]:
        required = (
            "quantity",
            "product",
            "validity",
            "price",
            "instrument_token",
            "order_type",
            "transaction_type",
            "disclosed_quantity",
            "trigger_price",
            "is_amo",
        )
        for name in required:
            if body.get(name) is None:
                raise UpstoxError(400, "UDAPI1026", f"{name} is required")
        if algo is not None and algo not in self.algo_names:
            raise UpstoxError(400, "UDAPI1156", "Invalid algo name")
        record = self.instruments.get(str(body["instrument_token"]))
        if record is None or record["segment"].endswith("_INDEX"):
            raise UpstoxError(400, "UDAPI1004", "Valid instrument_token is required")
        if body["order_type"] not in ORDER_TYPES or body["product"] not in PRODUCTS:
            raise UpstoxError(400, "UDAPI1028", "Invalid order_type or product")
        if body["validity"] not in VALIDITIES:
            raise UpstoxError(400, "UDAPI1029", "Invalid validity")
        tag = body.get("tag")
        if tag is not None and len(str(tag)) > 40:
            raise UpstoxError(400, "UDAPI1035", "tag length must be at most 40 characters")
        tick = Decimal(str(record.get("tick_size") or 5.0)) / 100
        price = Decimal(str(body["price"]))
        if body["order_type"] in ("LIMIT", "SL") and (price <= 0 or price % tick):
            raise UpstoxError(
                400, "UDAPI1040", f"Price must be a positive multiple of tick size {tick}"
            )
        trigger = Decimal(str(body["trigger_price"]))
        if body["order_type"] in ("SL", "SL-M") and (trigger <= 0 or trigger % tick):
            raise UpstoxError(400, "UDAPI1041", "Invalid trigger price")
        lot = int(record.get("lot_size") or 1)
        qty = int(body["quantity"])
        if qty <= 0 or qty % lot:
            raise UpstoxError(400, "UDAPI1042", f"Quantity must be a multiple of lot size {lot}")
        protection = body.get("market_protection")
        if body["order_type"] in ("MARKET", "SL-M") and protection is None:
            raise UpstoxError(400, "UDAPI1160", "market_protection is required for this order")
        if protection is not None and not (protection == -1 or 0 <= protection <= 25):
            raise UpstoxError(400, "UDAPI1159", "market_protection must be -1 or 0 to 25")
        freeze = int(record.get("freeze_quantity") or 0)
        if freeze and qty > freeze and not body.get("slice"):
            raise UpstoxError(
                400, "UDAPI1109", f"Quantity exceeds the freeze limit of {freeze}; use slice"
            )
        return record

    def _new_order(
        self, body: dict[str, Any], record: dict[str, Any], qty: int, amo: bool
    ) -> dict[str, Any]:
        n = next(self._ids)
        order_id = f"251125{n:09d}"
        order_type = body["order_type"]
        if amo:
            status = "after market order req received"
        elif order_type in ("SL", "SL-M"):
            status = "trigger pending"
        else:
            status = "open"
        now = self._now()
        return {
            "exchange": self._exchange_word(record),
            "product": body["product"],
            "price": body["price"],
            "quantity": qty,
            "status": status,
            "guid": None,
            "tag": body.get("tag"),
            "instrument_token": body["instrument_token"],
            "placed_by": "AB1234",
            "tradingsymbol": record["trading_symbol"],
            "trading_symbol": record["trading_symbol"],
            "order_type": order_type,
            "validity": body["validity"],
            "trigger_price": body["trigger_price"],
            "disclosed_quantity": body["disclosed_quantity"],
            "transaction_type": body["transaction_type"],
            "average_price": 0,
            "filled_quantity": 0,
            "pending_quantity": qty,
            "status_message": None,
            "status_message_raw": None,
            "exchange_order_id": f"1100000{n:09d}",
            "parent_order_id": None,
            "order_id": order_id,
            "variety": "SIMPLE",
            "order_timestamp": now,
            "exchange_timestamp": now,
            "is_amo": amo,
            "order_request_id": "1",
            "order_ref_id": f"ref-{n}",
        }

    async def _place(self, request: web.Request) -> web.Response:
        fault = self._take_fault("place")
        early = await self._apply_fault(fault)
        if early is not None:
            return early
        body = await request.json()
        with self._lock:
            self.placed.append(dict(body))
            record = self._check_place(body, request.headers.get("X-Algo-Name"))
            qty = int(body["quantity"])
            freeze = int(record.get("freeze_quantity") or 0)
            sizes = [qty]
            if body.get("slice") and freeze and qty > freeze:
                lot = int(record.get("lot_size") or 1)
                per = freeze - freeze % lot
                sizes = [per] * (qty // per) + ([qty % per] if qty % per else [])
            amo = bool(body["is_amo"])
            ids = []
            for size in sizes:
                order = self._new_order(body, record, size, amo)
                self.orders[order["order_id"]] = order
                ids.append(order["order_id"])
                self._record(order)
                if body["order_type"] == "MARKET" and not amo:
                    self._fill(order, size, self.prices[body["instrument_token"]])
        if fault == "timeout_after":
            await self._hang()
        if fault == "drop_after":
            transport = request.transport
            if transport is not None:
                transport.abort()
            await asyncio.sleep(0.1)
        return _ok({"order_ids": ids}, metadata={"latency": 12})

    # -- GTT (v3 /order/gtt): single-trigger rules held here, fired by trigger_gtts ---------

    def _gtt_rules(self, body: dict[str, Any], side: str) -> list[dict[str, Any]]:
        rules = body.get("rules")
        if not isinstance(rules, list) or not rules:
            raise UpstoxError(400, "UDAPI1087", "rules cannot be empty")
        out = []
        for rule in rules:
            if rule.get("strategy") not in ("ENTRY", "STOPLOSS", "TARGET"):
                raise UpstoxError(400, "UDAPI1088", "Invalid strategy")
            if rule.get("trigger_type") not in ("ABOVE", "BELOW", "IMMEDIATE"):
                raise UpstoxError(400, "UDAPI1089", "Invalid trigger_type")
            price = rule.get("trigger_price")
            if not isinstance(price, int | float) or price <= 0:
                raise UpstoxError(400, "UDAPI1090", "trigger_price must be positive")
            out.append(
                {
                    "strategy": rule["strategy"], "status": "SCHEDULED", "message": None,
                    "trigger_type": rule["trigger_type"], "trigger_price": float(price),
                    "transaction_type": side, "order_id": None,
                    "trailing_gap": rule.get("trailing_gap"),
                }
            )  # fmt: skip
        return out

    async def _gtt_place(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.gtt_requests.append(("place", dict(body)))
            if body.get("type") != "SINGLE":
                raise UpstoxError(400, "UDAPI1091", "this fake holds SINGLE GTTs only")
            key = str(body.get("instrument_token"))
            record = self.instruments.get(key)
            if record is None:
                raise UpstoxError(400, "UDAPI1004", "Invalid instrument key")
            if body.get("product") not in ("I", "D", "MTF"):
                raise UpstoxError(400, "UDAPI1092", "Invalid product")
            side = body.get("transaction_type")
            if side not in ("BUY", "SELL"):
                raise UpstoxError(400, "UDAPI1093", "Invalid transaction_type")
            quantity = int(body.get("quantity") or 0)
            if quantity <= 0 or quantity % int(record.get("lot_size") or 1):
                raise UpstoxError(400, "UDAPI1094", "quantity must be a multiple of the lot")
            gtt_id = f"GTT-C{next(self._ids):011d}"
            created = int(datetime.now(IST).timestamp() * 1000)
            self.gtts[gtt_id] = {
                "type": "SINGLE", "exchange": self._exchange_word(record), "quantity": quantity,
                "product": body["product"], "rules": self._gtt_rules(body, side),
                "trading_symbol": record["trading_symbol"], "instrument_token": key,
                "gtt_order_id": gtt_id, "expires_at": created + 365 * 86_400_000,
                "created_at": created,
            }  # fmt: skip
        return _ok({"gtt_order_ids": [gtt_id]}, metadata={"latency": 9})

    def _gtt(self, gtt_id: str) -> dict[str, Any]:
        gtt = self.gtts.get(gtt_id)
        if gtt is None:
            raise UpstoxError(400, "UDAPI1095", "GTT order not found")
        if gtt["rules"][0]["status"] != "SCHEDULED":
            raise UpstoxError(400, "UDAPI1096", f"GTT order is {gtt['rules'][0]['status']}")
        return gtt

    async def _gtt_modify(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.gtt_requests.append(("modify", dict(body)))
            gtt = self._gtt(str(body.get("gtt_order_id")))
            side = gtt["rules"][0]["transaction_type"]
            gtt["rules"] = self._gtt_rules(body, side)
            if body.get("quantity"):
                gtt["quantity"] = int(body["quantity"])
        return _ok({"gtt_order_ids": [gtt["gtt_order_id"]]}, metadata={"latency": 9})

    async def _gtt_cancel(self, request: web.Request) -> web.Response:
        body = await request.json()
        with self._lock:
            self.gtt_requests.append(("cancel", dict(body)))
            gtt = self._gtt(str(body.get("gtt_order_id")))
            for rule in gtt["rules"]:
                rule["status"] = "CANCELLED"
        return _ok({"gtt_order_ids": [gtt["gtt_order_id"]]}, metadata={"latency": 9})

    async def _gtt_get(self, request: web.Request) -> web.Response:
        wanted = request.query.get("gtt_order_id")
        with self._lock:
            rows = [dict(g, rules=[dict(r) for r in g["rules"]]) for g in self.gtts.values()]
        if wanted:
            rows = [r for r in rows if r["gtt_order_id"] == wanted]
        return _ok(rows)

    def trigger_gtts(self, key: str, price: str) -> list[str]:
        """The price of ``key`` moves to ``price``: every scheduled rule it crosses places
        its market order (with the rule's order id recorded); returns those order ids."""
        placed = []
        with self._lock:
            self.prices[key] = Decimal(price)
            record = self.instruments[key]
            for gtt in self.gtts.values():
                rule = gtt["rules"][0]
                if gtt["instrument_token"] != key or rule["status"] != "SCHEDULED":
                    continue
                level = Decimal(str(rule["trigger_price"]))
                if (rule["trigger_type"] == "ABOVE" and Decimal(price) < level) or (
                    rule["trigger_type"] == "BELOW" and Decimal(price) > level
                ):
                    continue
                body = {
                    "order_type": "MARKET", "product": gtt["product"], "price": 0,
                    "validity": "DAY", "trigger_price": 0, "disclosed_quantity": 0,
                    "transaction_type": rule["transaction_type"], "instrument_token": key,
                    "tag": gtt["gtt_order_id"],
                }  # fmt: skip
                order = self._new_order(body, record, gtt["quantity"], False)
                self.orders[order["order_id"]] = order
                self._record(order)
                self._fill(order, gtt["quantity"], Decimal(price))
                rule["status"], rule["order_id"] = "TRIGGERED", order["order_id"]
                placed.append(order["order_id"])
        return placed

    def _order(self, order_id: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise UpstoxError(400, "UDAPI100010", "Order not found")
        return order

    async def _modify(self, request: web.Request) -> web.Response:
        fault = self._take_fault("modify")
        early = await self._apply_fault(fault)
        if early is not None:
            return early
        body = await request.json()
        with self._lock:
            self.modified.append(dict(body))
            order = self._order(str(body.get("order_id")))
            if order["status"] not in WORKING:
                raise UpstoxError(
                    400, "UDAPI100040", f"Order cannot be modified as it is {order['status']}"
                )
            for name in ("quantity", "price", "trigger_price", "order_type", "validity"):
                if body.get(name) is not None:
                    order[name] = body[name]
            order["pending_quantity"] = order["quantity"] - order["filled_quantity"]
            if order["status"] == "trigger pending" and order["order_type"] in ("LIMIT", "MARKET"):
                order["status"] = "open"
            order["exchange_timestamp"] = self._now()
            self._record(order)
        return _ok({"order_id": order["order_id"]}, metadata={"latency": 9})

    async def _cancel(self, request: web.Request) -> web.Response:
        fault = self._take_fault("cancel")
        early = await self._apply_fault(fault)
        if early is not None:
            return early
        with self._lock:
            order = self._order(request.query.get("order_id", ""))
            if order["status"] not in WORKING:
                raise UpstoxError(
                    400, "UDAPI100040", f"Order cannot be cancelled as it is {order['status']}"
                )
            order["status"] = "cancelled"
            order["exchange_timestamp"] = self._now()
            self._record(order)
        return _ok({"order_id": order["order_id"]}, metadata={"latency": 7})

    async def _book(self, request: web.Request) -> web.Response:
        early = await self._apply_fault(self._take_fault("orders"))
        if early is not None:
            return early
        with self._lock:
            return _ok([dict(o) for o in self.orders.values()])

    async def _details(self, request: web.Request) -> web.Response:
        with self._lock:
            return _ok(dict(self._order(request.query.get("order_id", ""))))

    async def _order_history(self, request: web.Request) -> web.Response:
        order_id, tag = request.query.get("order_id"), request.query.get("tag")
        with self._lock:
            if order_id:
                self._order(order_id)
                rows = self.history.get(order_id, [])
            else:
                rows = [
                    h for oid, hs in self.history.items() for h in hs if hs and h.get("tag") == tag
                ]
            return _ok(rows)

    async def _trades(self, request: web.Request) -> web.Response:
        with self._lock:
            return _ok(list(self.trades))

    def _day_positions(self) -> list[dict[str, Any]]:
        """Net positions from the day's trades, shaped like ``PositionData``."""
        rows: dict[tuple[str, str], dict[str, Any]] = {}
        for trade in self.trades:
            key = (trade["instrument_token"], trade["product"])
            row = rows.setdefault(
                key,
                {"buy_q": 0, "sell_q": 0, "buy_v": Decimal(0), "sell_v": Decimal(0),
                 "trade": trade},
            )
            value = Decimal(str(trade["average_price"])) * trade["quantity"]
            if trade["transaction_type"] == "BUY":
                row["buy_q"] += trade["quantity"]
                row["buy_v"] += value
            else:
                row["sell_q"] += trade["quantity"]
                row["sell_v"] += value
        out = []
        for (token, product), row in rows.items():
            qty = row["buy_q"] - row["sell_q"]
            buy_price = row["buy_v"] / row["buy_q"] if row["buy_q"] else Decimal(0)
            sell_price = row["sell_v"] / row["sell_q"] if row["sell_q"] else Decimal(0)
            trade = row["trade"]
            out.append(
                {
                    "exchange": trade["exchange"], "multiplier": 1.0, "value": 0, "pnl": 0,
                    "product": product, "instrument_token": token,
                    "average_price": _num(buy_price if qty >= 0 else sell_price),
                    "buy_value": _num(row["buy_v"]), "overnight_quantity": 0,
                    "day_buy_value": _num(row["buy_v"]), "day_buy_price": _num(buy_price),
                    "overnight_buy_amount": 0, "overnight_buy_quantity": 0,
                    "day_buy_quantity": row["buy_q"], "day_sell_value": _num(row["sell_v"]),
                    "day_sell_price": _num(sell_price), "overnight_sell_amount": 0,
                    "overnight_sell_quantity": 0, "day_sell_quantity": row["sell_q"],
                    "quantity": qty, "last_price": _num(self.prices[token]),
                    "unrealised": 0, "realised": 0, "sell_value": _num(row["sell_v"]),
                    "tradingsymbol": trade["tradingsymbol"],
                    "trading_symbol": trade["trading_symbol"], "close_price": 0,
                    "buy_price": _num(buy_price), "sell_price": _num(sell_price),
                }
            )
        return out

    async def _positions(self, request: web.Request) -> web.Response:
        with self._lock:
            return _ok(list(self.positions) + self._day_positions())

    async def _holdings(self, request: web.Request) -> web.Response:
        with self._lock:
            return _ok(list(self.holdings))

    # -- history ----------------------------------------------------------------------------

    async def _candles(self, request: web.Request) -> web.Response:
        early = await self._apply_fault(self._take_fault("history"))
        if early is not None:
            return early
        m = request.match_info
        key, unit, interval = m["key"], m["unit"], int(m["interval"])
        if key not in self.instruments:
            raise UpstoxError(400, "UDAPI1021", "Instrument key is invalid")
        step = {"minutes": 60, "hours": 3600, "days": 86400}.get(unit)
        if step is None:
            raise UpstoxError(400, "UDAPI1022", "Invalid unit")
        to_day = date.fromisoformat(m["to_date"])
        from_day = date.fromisoformat(m["from_date"])
        if unit == "minutes" and interval <= 15 and (to_day - from_day).days > 31:
            raise UpstoxError(400, "UDAPI1148", "Date range exceeds one month for this interval")
        seconds = step * interval
        base = self.prices[key]
        candles = []
        day = from_day
        while day <= to_day:
            if day.weekday() < 5:
                if unit == "days":
                    starts = [datetime.combine(day, time(0, 0), IST)]
                else:
                    first = datetime.combine(day, time(9, 15), IST)
                    last = datetime.combine(day, time(15, 30), IST)
                    count = math.ceil((last - first).total_seconds() / seconds)
                    starts = [first + timedelta(seconds=seconds * i) for i in range(count)]
                for at in starts:
                    wiggle = Decimal(at.minute % 7) / 10
                    o = base + wiggle
                    candles.append(
                        [
                            at.isoformat(),
                            _num(o),
                            _num(o + 1),
                            _num(o - 1),
                            _num(o + Decimal("0.5")),
                            1000 + at.minute,
                            0,
                        ]
                    )
            day += timedelta(days=1)
        candles.reverse()  # Upstox sends newest first
        return _ok({"candles": candles})

    # -- Feed V3 ----------------------------------------------------------------------------

    def _feed_url(self) -> str:
        code = secrets.token_urlsafe(12)
        with self._lock:
            self.feed_codes.add(code)
        return (
            f"ws://127.0.0.1:{self.port}/market-data-feeder/v3/upstox-developer-api/feeds"
            f"?requestId={secrets.token_hex(4)}&code={code}"
        )

    async def _feed_authorize(self, request: web.Request) -> web.Response:
        fault = self._take_fault("feed-authorize")
        if fault == "reused" and self._last_feed_url:
            return _ok({"authorizedRedirectUri": self._last_feed_url})
        early = await self._apply_fault(fault)
        if early is not None:
            return early
        self._last_feed_url = self._feed_url()
        return _ok({"authorizedRedirectUri": self._last_feed_url})

    async def _feed_redirect(self, request: web.Request) -> web.StreamResponse:
        raise web.HTTPTemporaryRedirect(self._feed_url())

    def _redeem(self, codes: set[str], code: str) -> bool:
        with self._lock:
            if code in codes:
                codes.discard(code)
                self.used_codes.add(code)
                return True
            if code in self.used_codes:
                self.refused_reused += 1
            return False

    async def _feed_ws(self, request: web.Request) -> web.StreamResponse:
        if self.silent:  # a black-holed feed: nothing answers, new sockets included
            await asyncio.sleep(self.hang_seconds)
            return _error(503, "UDAPI100500", "Service unavailable")
        if not self._redeem(self.feed_codes, request.query.get("code", "")):
            return _error(403, "UDAPI100211", "Invalid or expired websocket authorization code")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        sock = _FeedSocket(ws)
        with self._lock:
            self.feed_sockets.append(sock)
            self.feed_connects += 1
        try:
            await ws.send_bytes(self.market_info_frame())
            async for msg in ws:
                if msg.type == WSMsgType.PING:
                    if self.answer_pings:
                        await ws.pong(msg.data)
                    continue
                if msg.type == WSMsgType.TEXT:
                    continue  # Upstox only reads binary frames
                if msg.type != WSMsgType.BINARY:
                    continue
                command = json.loads(msg.data)
                with self._lock:
                    self.feed_requests.append(command)
                method = command.get("method")
                data = command.get("data") or {}
                keys = [k for k in data.get("instrumentKeys") or [] if k in self.instruments]
                if method == "sub" or method == "change_mode":
                    mode = data.get("mode") or "ltpc"
                    with self._lock:
                        for key in keys:
                            sock.modes[key] = mode
                    if keys:
                        await ws.send_bytes(
                            self.feed_frame(pb.initial_feed, dict.fromkeys(keys, mode))
                        )
                elif method == "unsub":
                    with self._lock:
                        for key in keys:
                            sock.modes.pop(key, None)
        finally:
            with self._lock:
                if sock in self.feed_sockets:
                    self.feed_sockets.remove(sock)
        return ws

    # -- portfolio stream -------------------------------------------------------------------

    async def _portfolio_authorize(self, request: web.Request) -> web.Response:
        code = secrets.token_urlsafe(12)
        with self._lock:
            self.portfolio_codes.add(code)
        types = request.query.get("update_types", "order")
        url = (
            f"ws://127.0.0.1:{self.port}/portfolio-stream-feeder/v2/feeds"
            f"?update_types={types}&code={code}"
        )
        return _ok({"authorizedRedirectUri": url})

    async def _portfolio_ws(self, request: web.Request) -> web.StreamResponse:
        if not self._redeem(self.portfolio_codes, request.query.get("code", "")):
            return _error(403, "UDAPI100211", "Invalid or expired websocket authorization code")
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        with self._lock:
            self.portfolio_sockets.append(ws)
            self.portfolio_connects += 1
        try:
            async for msg in ws:
                if msg.type == WSMsgType.PING and self.answer_pings:
                    await ws.pong(msg.data)
        finally:
            with self._lock:
                if ws in self.portfolio_sockets:
                    self.portfolio_sockets.remove(ws)
        return ws
