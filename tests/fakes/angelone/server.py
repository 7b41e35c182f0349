"""A local Angel One SmartAPI: REST and the binary market-data socket on 127.0.0.1.

The real smartapi-python SDK talks to it in tests. It answers in Angel's shapes
(research/brokers.md §1.4, §2.4, §9.2; wave2.md §1): ``{"status", "message", "errorcode",
"data"}``, failures as HTTP 200 with ``status: false`` and an ``errorcode``, token failures
(AG8001/AG8002) likewise, an excess of requests as HTTP 403 with the plain text "Access
denied because of exceeding rate limit". Login is ``loginByPassword`` with the client code,
PIN and a TOTP checked with pyotp (window of one step each way), and the ``X-PrivateKey``
header. Numbers in order-book rows come as Angel sends them (prices as numbers, quantities
as strings).

Behind it sits a small OMS: LIMIT orders rest ``open``, stop orders rest ``trigger pending``,
MARKET orders become limits inside Angel's 0.5 % market price protection and fill at the
last price. ``/smart-stream`` is a WebSocket that checks the four auth headers, accepts
subscribe/unsubscribe JSON, answers the text ``ping`` with ``pong``, refuses more than
``tokens_per_connection`` subscriptions with error E1002, and sends one little-endian packet
per message. Faults (``inject``) are one-shot per route.

``/smart-order-update`` is the order-update socket (smartapi-python's
``SmartWebSocketOrderUpdate``): it checks ``Authorization`` (the session's JWT, with or
without ``Bearer``; 401 otherwise), greets with ``AB00`` and an empty ``orderData``, answers
``ping`` with ``pong``, and pushes ``{"user-id", "status-code", "order-status", "error-message",
"orderData"}`` with the order book's record on every placement, change, cancel and fill.
``refuse_order_sockets`` answers its handshake with 503 (a socket that cannot come back), and
``drop_order_sockets`` cuts it.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import secrets
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pyotp
from aiohttp import WSMsgType, web

from tests.fakes.angelone.packets import LTP, QUOTE, SNAP_QUOTE, Quote, encode, sample_quote
from tests.fakes.loopback import LoopbackServer

IST = ZoneInfo("Asia/Kolkata")
PREFIX = "/rest/secure/angelbroking"
ORDER_ROUTES = frozenset({"placeOrder", "modifyOrder", "cancelOrder"})
FAULTS = frozenset(
    {
        "timeout_before",
        "timeout_after",
        "drop_after",
        "rate_limit",
        "session",
        "html",
        "ip",
        "funds",
    }
)
RATE_LIMIT_TEXT = "Access denied because of exceeding rate limit"
INTERVAL_DAYS = {
    "ONE_MINUTE": (60, 30),
    "THREE_MINUTE": (180, 60),
    "FIVE_MINUTE": (300, 100),
    "TEN_MINUTE": (600, 100),
    "FIFTEEN_MINUTE": (900, 200),
    "THIRTY_MINUTE": (1800, 200),
    "ONE_HOUR": (3600, 400),
    "ONE_DAY": (86400, 2000),
}
VARIETIES = ("NORMAL", "STOPLOSS", "AMO", "ROBO")
ORDER_TYPES = ("MARKET", "LIMIT", "STOPLOSS_LIMIT", "STOPLOSS_MARKET")
PRODUCTS = ("DELIVERY", "CARRYFORWARD", "MARGIN", "INTRADAY", "BO")
DURATIONS = ("DAY", "IOC")
EXCHANGE_TYPES = {"NSE": 1, "NFO": 2, "BSE": 3, "BFO": 4, "MCX": 5}
WORKING = ("open", "trigger pending", "after market order req received")
MPP_PERCENT = Decimal("0.5")
# The order-update socket's "order-status" codes (SmartAPI docs, WebSocket order status).
ORDER_STATUS_CODES = {
    "open": "AB01",
    "cancelled": "AB02",
    "rejected": "AB03",
    "complete": "AB05",
    "after market order req received": "AB06",
    "trigger pending": "AB10",
}
BODY = web.RequestKey("body", dict)


@dataclass
class ScripRow:
    token: str
    symbol: str
    name: str
    exch_seg: str
    instrumenttype: str = ""
    expiry: str = ""
    strike: str = "-1.000000"
    lotsize: str = "1"
    tick_size: str = "5.000000"  # paise
    ltp: str = "100.00"

    def master(self) -> dict[str, str]:
        return {
            "token": self.token,
            "symbol": self.symbol,
            "name": self.name,
            "expiry": self.expiry,
            "strike": self.strike,
            "lotsize": self.lotsize,
            "instrumenttype": self.instrumenttype,
            "exch_seg": self.exch_seg,
            "tick_size": self.tick_size,
        }


def default_scrips() -> list[ScripRow]:
    return [
        ScripRow("3045", "SBIN-EQ", "SBIN", "NSE", ltp="812.40"),
        ScripRow("2885", "RELIANCE-EQ", "RELIANCE", "NSE", ltp="2456.75"),
        ScripRow("1594", "INFY-EQ", "INFY", "NSE", ltp="1510.05"),
        ScripRow("11536", "TCS-EQ", "TCS", "NSE", ltp="3901.10"),
        ScripRow("500112", "SBIN", "SBIN", "BSE", ltp="812.35"),
        ScripRow(
            "99926000", "Nifty 50", "NIFTY", "NSE", "AMXIDX",
            tick_size="0.000000", ltp="24150.35",
        ),
        ScripRow(
            "43650", "NIFTY30DEC26FUT", "NIFTY", "NFO", "FUTIDX", "30DEC2026",
            lotsize="75", tick_size="10.000000", ltp="24210.50",
        ),
        ScripRow(
            "43700", "NIFTY30DEC2624000CE", "NIFTY", "NFO", "OPTIDX", "30DEC2026",
            strike="2400000.000000", lotsize="75", ltp="310.45",
        ),
    ]  # fmt: skip


def _ok(data: Any) -> web.Response:
    return web.json_response({"status": True, "message": "SUCCESS", "errorcode": "", "data": data})


def _fail(code: str, message: str, status: int = 200) -> web.Response:
    return web.json_response(
        {"status": False, "message": message, "errorcode": code, "data": None}, status=status
    )


class AngelFailure(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class _Socket:
    def __init__(self, ws: web.WebSocketResponse, request: web.Request) -> None:
        self.ws = ws
        self.request = request
        self.modes: dict[tuple[int, str], int] = {}


class FakeAngel(LoopbackServer):
    """The fake server and its OMS. Use as a context manager or call start()/stop()."""

    label = "fake Angel One"

    def __init__(
        self,
        *,
        api_key: str = "fakeangelkey",
        client_code: str = "A1234567",
        pin: str = "4321",
        totp_secret: str = "JBSWY3DPEHPK3PXPJBSWY3DP",
        hang_seconds: float = 1.0,
        tokens_per_connection: int = 1000,
        enforce_order_limit: bool = False,
        scrips: list[ScripRow] | None = None,
    ) -> None:
        self.api_key = api_key
        self.client_code = client_code
        self.pin = pin
        self.totp_secret = totp_secret
        self.hang_seconds = hang_seconds
        self.tokens_per_connection = tokens_per_connection
        self.enforce_order_limit = enforce_order_limit
        self.orders_per_second = 9  # Angel's: place + modify + cancel together
        self.scrips = {(s.exch_seg, s.token): s for s in scrips or default_scrips()}
        self.jwts: set[str] = set()
        self.expired: set[str] = set()
        self.refresh_tokens: set[str] = set()
        self.feed_tokens: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.holdings = [
            {
                "tradingsymbol": "SBIN-EQ", "exchange": "NSE", "isin": "INE062A01020",
                "t1quantity": 0, "realisedquantity": 10, "quantity": 10,
                "authorisedquantity": 0, "product": "DELIVERY", "collateralquantity": None,
                "collateraltype": None, "haircut": 0.0, "averageprice": 701.5, "ltp": 812.4,
                "symboltoken": "3045", "close": 805.0, "profitandloss": 1109,
                "pnlpercentage": 15.81,
            }
        ]  # fmt: skip
        self.requests: list[tuple[str, str, dict[str, Any]]] = []
        self.order_sends: list[float] = []
        self.candle_requests: list[dict[str, Any]] = []
        self.master_downloads = 0
        self._faults: deque[tuple[str, str]] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self.sockets: list[_Socket] = []
        self.ws_connects = 0
        self.ws_refused = 0
        self.ws_texts: list[str] = []
        self.ws_errors_sent: list[dict[str, Any]] = []
        self.answer_ping = True
        self.silent = False  # send nothing at all (ticks, snapshots, pongs)
        self.order_sockets: list[_Socket] = []
        self.order_socket_connects = 0
        self.order_socket_refused = 0
        self.order_socket_headers: list[dict[str, str]] = []
        self.refuse_order_sockets = False
        self.order_updates_sent: list[dict[str, Any]] = []
        self.sequence = itertools.count(1)

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/smart-stream"

    @property
    def order_stream_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/smart-order-update"

    @property
    def master_url(self) -> str:
        return f"{self.base_url}/OpenAPI_File/files/OpenAPIScripMaster.json"

    def totp(self) -> str:
        return pyotp.TOTP(self.totp_secret).now()

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        return app

    async def before_shutdown(self) -> None:
        for sock in [*self.sockets, *self.order_sockets]:
            with contextlib.suppress(Exception):
                await sock.ws.close()

    # -- test controls ----------------------------------------------------------------------

    def inject(self, route: str, fault: str) -> None:
        """Make the next request to ``route`` (``placeOrder``, ``getOrderBook``, ``any``...)
        fail with ``fault`` (see ``FAULTS``)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append((route, fault))

    def issue_session(self) -> tuple[str, str, str]:
        """A valid (jwt, refresh, feed) triple without going through the login."""
        jwt, refresh, feed = (secrets.token_urlsafe(24) for _ in range(3))
        with self._lock:
            self.jwts.add(jwt)
            self.refresh_tokens.add(refresh)
            self.feed_tokens.add(feed)
        return jwt, refresh, feed

    def expire_sessions(self) -> None:
        with self._lock:
            self.expired |= self.jwts
            self.jwts.clear()

    def set_price(self, exchange: str, token: str, ltp: str) -> None:
        with self._lock:
            self.scrips[(exchange, token)].ltp = ltp

    def fill(self, order_id: str, quantity: int | None = None, price: str | None = None) -> None:
        with self._lock:
            order = self.orders[order_id]
            scrip = self.scrips[(order["exchange"], order["symboltoken"])]
            qty = quantity or int(order["unfilledshares"])
            self._fill(order, qty, Decimal(price or scrip.ltp))
            self._notify(order)

    def live_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self.orders.values() if o["orderstatus"] in WORKING]

    def count(self, route: str) -> int:
        return sum(1 for _, r, _ in self.requests if r == route)

    # -- plumbing -------------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_post("/rest/auth/angelbroking/user/v1/loginByPassword", self._login)
        r.add_post("/rest/auth/angelbroking/jwt/v1/generateTokens", self._generate_tokens)
        r.add_get(f"{PREFIX}/user/v1/getProfile", self._profile)
        r.add_post(f"{PREFIX}/user/v1/logout", self._logout)
        r.add_get(f"{PREFIX}/user/v1/getRMS", self._rms)
        r.add_post(f"{PREFIX}/order/v1/placeOrder", self._place)
        r.add_post(f"{PREFIX}/order/v1/modifyOrder", self._modify)
        r.add_post(f"{PREFIX}/order/v1/cancelOrder", self._cancel)
        r.add_get(f"{PREFIX}/order/v1/getOrderBook", self._order_book)
        r.add_get(f"{PREFIX}/order/v1/getTradeBook", self._trade_book)
        r.add_get(f"{PREFIX}/order/v1/getPosition", self._positions)
        r.add_get(f"{PREFIX}/order/v1/details/{{unique}}", self._details)
        r.add_post(f"{PREFIX}/order/v1/getLtpData", self._ltp)
        r.add_get(f"{PREFIX}/portfolio/v1/getHolding", self._holdings)
        r.add_post(f"{PREFIX}/historical/v1/getCandleData", self._candles)
        r.add_get("/OpenAPI_File/files/OpenAPIScripMaster.json", self._master)
        r.add_get("/smart-stream", self._ws)
        r.add_get("/smart-order-update", self._order_ws)

    @staticmethod
    def _route_of(request: web.Request) -> str:
        parts = request.path.rstrip("/").split("/")
        if "details" in parts:
            return "details"
        return parts[-1]

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            for i, (target, fault) in enumerate(self._faults):
                if target in (route, "any"):
                    del self._faults[i]
                    return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        route = self._route_of(request)
        body: dict[str, Any] = {}
        if request.method == "POST" and request.can_read_body:
            with contextlib.suppress(ValueError):
                body = json.loads(await request.text() or "{}")
        self.requests.append((request.method, route, body))
        if route in ORDER_ROUTES:
            now = time.monotonic()
            with self._lock:
                self.order_sends.append(now)
                recent = sum(1 for t in self.order_sends if now - t < 1.0)
            if self.enforce_order_limit and recent > self.orders_per_second:
                return web.Response(status=403, text=RATE_LIMIT_TEXT, content_type="text/plain")
        sockets = ("smart-stream", "smart-order-update")
        if route not in ("loginByPassword", "OpenAPIScripMaster.json", *sockets):
            if request.headers.get("X-PrivateKey") != self.api_key:
                return _fail("AG8004", "Invalid API Key", 401)
            auth = request.headers.get("Authorization", "")
            token = auth.removeprefix("Bearer ")
            with self._lock:
                valid = token in self.jwts
                expired = token in self.expired
            if route != "generateTokens" and not valid:
                if expired:
                    return _fail("AG8002", "Token Expired", 401)
                return _fail("AG8001", "Invalid Token", 401)
        fault = self._take_fault(route)
        if fault == "rate_limit":
            return web.Response(status=403, text=RATE_LIMIT_TEXT, content_type="text/plain")
        if fault == "session":
            return _fail("AB1010", "AMX Session Expired")
        if fault == "html":
            return web.Response(
                status=502,
                text="<html><body>502 Bad Gateway</body></html>",
                content_type="text/html",
            )
        if fault == "funds":
            return _fail("AB4037", "Insufficient funds: required margin exceeds available margin")
        if fault == "ip":
            return _fail("AB4035", "Order rejected: request IP is not whitelisted for API orders")
        if fault == "timeout_before":
            await asyncio.sleep(self.hang_seconds)
            return _fail("AB2001", "abandoned")
        request[BODY] = body
        try:
            response: web.StreamResponse = await handler(request)
        except AngelFailure as exc:
            response = _fail(exc.code, exc.message)
        if fault == "timeout_after":
            await asyncio.sleep(self.hang_seconds)
        if fault == "drop_after":
            transport = request.transport
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]
        return response

    # -- session ----------------------------------------------------------------------------

    async def _login(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        if request.headers.get("X-PrivateKey") != self.api_key:
            return _fail("AG8004", "Invalid API Key", 401)
        if body.get("clientcode") != self.client_code or body.get("password") != self.pin:
            return _fail("AB1007", "Invalid clientcode or password")
        if not pyotp.TOTP(self.totp_secret).verify(str(body.get("totp", "")), valid_window=1):
            return _fail("AB1050", "Invalid totp")
        jwt, refresh, feed = self.issue_session()
        return _ok({"jwtToken": jwt, "refreshToken": refresh, "feedToken": feed})

    async def _generate_tokens(self, request: web.Request) -> web.StreamResponse:
        if request[BODY].get("refreshToken") not in self.refresh_tokens:
            return _fail("AG8002", "Token Expired", 401)
        jwt, _, feed = self.issue_session()
        return _ok(
            {"jwtToken": jwt, "refreshToken": request[BODY]["refreshToken"], "feedToken": feed}
        )

    async def _profile(self, request: web.Request) -> web.StreamResponse:
        return _ok(
            {
                "clientcode": self.client_code, "name": "TEST TRADER", "email": "",
                "mobileno": "", "exchanges": ["NSE", "BSE", "NFO", "BFO", "MCX"],
                "products": ["MARGIN", "MIS", "NRML", "CNC", "CO", "BO"],
                "lastlogintime": "", "brokerid": "B2C",
            }
        )  # fmt: skip

    async def _logout(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            self.jwts.discard(auth)
        return _ok(None)

    async def _rms(self, request: web.Request) -> web.StreamResponse:
        used = sum(
            (Decimal(str(o["price"])) * int(o["quantity"]) for o in self.live_orders()), Decimal(0)
        )
        return _ok(
            {
                "net": f"{Decimal('250000.00') - used:.2f}", "availablecash": "250000.00",
                "availableintradaypayin": "0.00", "availablelimitmargin": "0.00",
                "collateral": "0.00", "m2munrealized": "0.00", "m2mrealized": "0.00",
                "utiliseddebits": f"{used:.2f}", "utilisedspan": "0.00",
                "utilisedoptionpremium": "0.00", "utilisedholdingsales": "0.00",
                "utilisedexposure": "0.00", "utilisedturnover": "0.00", "utilisedpayout": "0.00",
            }
        )  # fmt: skip

    # -- orders -----------------------------------------------------------------------------

    @staticmethod
    def _need(body: dict[str, Any], name: str) -> str:
        value = body.get(name)
        if value in (None, ""):
            raise AngelFailure("AB4009", f"Invalid {name}")
        return str(value)

    def _now(self) -> str:
        return datetime.now(IST).strftime("%d-%b-%Y %H:%M:%S")

    async def _place(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        variety = self._need(body, "variety")
        if variety not in VARIETIES:
            raise AngelFailure("AB1008", "Invalid Order Variety")
        order_type = self._need(body, "ordertype")
        if order_type not in ORDER_TYPES:
            raise AngelFailure("AB4010", "Invalid Order Type")
        product = self._need(body, "producttype")
        if product not in PRODUCTS:
            raise AngelFailure("AB1012", "Invalid Product Type")
        duration = self._need(body, "duration")
        if duration not in DURATIONS:
            raise AngelFailure("AB4011", "Invalid Duration")
        side = self._need(body, "transactiontype")
        if side not in ("BUY", "SELL"):
            raise AngelFailure("AB4012", "Invalid Transaction Type")
        tag = str(body.get("ordertag") or "")
        if len(tag) >= 20:
            raise AngelFailure("AB4008", "ordertag length should be less than 20 characters")
        exchange = self._need(body, "exchange")
        token = self._need(body, "symboltoken")
        scrip = self.scrips.get((exchange, token))
        if scrip is None or scrip.symbol != body.get("tradingsymbol"):
            raise AngelFailure("AB1009", "Symbol Not Found")
        if duration == "IOC" and exchange == "MCX":
            raise AngelFailure("AB4036", "IOC orders are not allowed for commodities")
        if (variety == "STOPLOSS") != order_type.startswith("STOPLOSS"):
            raise AngelFailure("AB1008", "Invalid Order Variety for the order type")
        quantity = int(self._need(body, "quantity"))
        lot = int(scrip.lotsize)
        if quantity <= 0 or quantity % lot:
            raise AngelFailure("AB4014", f"Quantity should be a multiple of lot size {lot}")
        price = Decimal(str(body.get("price") or "0"))
        trigger = Decimal(str(body.get("triggerprice") or "0"))
        tick = Decimal(scrip.tick_size) / 100
        for value in (price, trigger):
            if value and tick and value % tick:
                raise AngelFailure("AB4015", f"Price should be a multiple of tick size {tick}")
        ltp = Decimal(scrip.ltp)
        if order_type == "MARKET":
            # Angel's market price protection: the order becomes a limit inside the band.
            band = (ltp * MPP_PERCENT / 100).quantize(Decimal("0.05"), ROUND_HALF_UP)
            price = ltp + band if side == "BUY" else ltp - band
        order_id = f"2612030{next(self._ids):08d}"
        unique = str(uuid.uuid4())
        now = self._now()
        order = {
            "variety": variety, "ordertype": order_type, "producttype": product,
            "duration": duration, "price": float(price), "triggerprice": float(trigger),
            "quantity": str(quantity), "disclosedquantity": "0", "squareoff": 0.0,
            "stoploss": 0.0, "trailingstoploss": 0.0, "tradingsymbol": scrip.symbol,
            "transactiontype": side, "exchange": exchange, "symboltoken": token,
            "ordertag": tag, "instrumenttype": scrip.instrumenttype, "strikeprice": -1.0,
            "optiontype": "", "expirydate": scrip.expiry, "lotsize": scrip.lotsize,
            "cancelsize": "0", "averageprice": 0.0, "filledshares": "0",
            "unfilledshares": str(quantity), "orderid": order_id, "text": "", "status": "",
            "orderstatus": "", "updatetime": now, "exchtime": now,
            "exchorderupdatetime": now, "fillid": "", "filltime": "", "parentorderid": "",
            "uniqueorderid": unique,
        }  # fmt: skip
        if variety == "AMO":
            status = "after market order req received"
        elif variety == "STOPLOSS":
            status = "trigger pending"
        else:
            status = "open"
        order["status"] = order["orderstatus"] = status
        with self._lock:
            self.orders[order_id] = order
            if order_type == "MARKET" and variety != "AMO":
                self._fill(order, quantity, ltp)
            elif duration == "IOC" and order_type == "LIMIT":
                marketable = price >= ltp if side == "BUY" else price <= ltp
                if marketable:
                    self._fill(order, quantity, ltp)
                else:  # immediate or cancel: nothing to match now, so cancelled
                    order["status"] = order["orderstatus"] = "cancelled"
                    order["cancelsize"] = str(quantity)
            self._notify(order)
        return _ok({"script": scrip.symbol, "orderid": order_id, "uniqueorderid": unique})

    def _fill(self, order: dict[str, Any], qty: int, price: Decimal) -> None:
        filled = int(order["filledshares"]) + qty
        old_avg = Decimal(str(order["averageprice"]))
        avg = (old_avg * int(order["filledshares"]) + price * qty) / filled
        order["filledshares"] = str(filled)
        order["unfilledshares"] = str(int(order["quantity"]) - filled)
        order["averageprice"] = float(avg.quantize(Decimal("0.01")))
        if filled >= int(order["quantity"]):
            order["status"] = order["orderstatus"] = "complete"
        order["updatetime"] = self._now()
        self.trades.append(
            {
                "exchange": order["exchange"], "producttype": order["producttype"],
                "tradingsymbol": order["tradingsymbol"], "instrumenttype": order["instrumenttype"],
                "symbolgroup": "EQ", "strikeprice": "-1", "optiontype": "", "expirydate": "",
                "marketlot": order["lotsize"], "precision": "2", "multiplier": "-1",
                "tradevalue": f"{price * qty:.2f}", "transactiontype": order["transactiontype"],
                "fillprice": f"{price:.2f}", "fillsize": str(qty), "orderid": order["orderid"],
                "fillid": f"{len(self.trades) + 1:08d}",
                "filltime": datetime.now(IST).strftime("%H:%M:%S"),
            }
        )  # fmt: skip

    def _working(self, order_id: str, verb: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise AngelFailure("AB1013", "Order not found")
        if order["orderstatus"] not in WORKING:
            raise AngelFailure("AB4020", f"Order cannot be {verb}: it is {order['orderstatus']}")
        return order

    async def _modify(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        with self._lock:
            order = self._working(self._need(body, "orderid"), "modified")
            for field in ("ordertype", "producttype", "duration"):
                if field in body and body[field] != order[field]:
                    if field == "ordertype" and body[field] in ORDER_TYPES:
                        order[field] = body[field]
                    else:
                        raise AngelFailure("AB4016", f"{field} cannot be changed")
            if "quantity" in body:
                order["quantity"] = str(body["quantity"])
                order["unfilledshares"] = str(int(body["quantity"]) - int(order["filledshares"]))
            if "price" in body:
                order["price"] = float(Decimal(str(body["price"])))
            if "triggerprice" in body:
                order["triggerprice"] = float(Decimal(str(body["triggerprice"])))
            order["updatetime"] = self._now()
            order["uniqueorderid"] = str(uuid.uuid4())
            self._notify(order)
        return _ok({"orderid": order["orderid"], "uniqueorderid": order["uniqueorderid"]})

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        with self._lock:
            order = self._working(self._need(body, "orderid"), "cancelled")
            order["status"] = order["orderstatus"] = "cancelled"
            order["cancelsize"] = order["unfilledshares"]
            order["updatetime"] = self._now()
            self._notify(order)
        return _ok({"orderid": order["orderid"], "uniqueorderid": order["uniqueorderid"]})

    async def _order_book(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            rows = [dict(o) for o in self.orders.values()]
        return _ok(rows or None)  # Angel sends null, not [], for an empty book

    async def _details(self, request: web.Request) -> web.StreamResponse:
        unique = request.match_info["unique"]
        with self._lock:
            for order in self.orders.values():
                if order["uniqueorderid"] == unique:
                    return _ok(dict(order))
        raise AngelFailure("AB1013", "Order not found")

    async def _trade_book(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _ok([dict(t) for t in self.trades] or None)

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        book: dict[tuple[str, str, str], dict[str, Any]] = {}
        with self._lock:
            trades = list(self.trades)
        for t in trades:
            order = self.orders[t["orderid"]]
            k = (t["exchange"], order["symboltoken"], t["producttype"])
            p = book.setdefault(
                k,
                {
                    "buyqty": 0,
                    "sellqty": 0,
                    "buyamt": Decimal(0),
                    "sellamt": Decimal(0),
                    "symbol": t["tradingsymbol"],
                },
            )
            qty, price = int(t["fillsize"]), Decimal(t["fillprice"])
            if t["transactiontype"] == "BUY":
                p["buyqty"] += qty
                p["buyamt"] += qty * price
            else:
                p["sellqty"] += qty
                p["sellamt"] += qty * price
        rows = []
        for (exchange, token, product), p in book.items():
            net = p["buyqty"] - p["sellqty"]
            ltp = Decimal(self.scrips[(exchange, token)].ltp)
            buyavg = p["buyamt"] / p["buyqty"] if p["buyqty"] else Decimal(0)
            sellavg = p["sellamt"] / p["sellqty"] if p["sellqty"] else Decimal(0)
            netprice = buyavg if net > 0 else sellavg if net < 0 else Decimal(0)
            rows.append(
                {
                    "exchange": exchange, "symboltoken": token, "producttype": product,
                    "tradingsymbol": p["symbol"], "symbolname": p["symbol"].split("-")[0],
                    "instrumenttype": "", "priceden": "1.00", "pricenum": "1.00",
                    "genden": "1.00", "gennum": "1.00", "precision": "2", "multiplier": "-1",
                    "boardlotsize": "1", "buyqty": str(p["buyqty"]), "sellqty": str(p["sellqty"]),
                    "buyamount": f"{p['buyamt']:.2f}", "sellamount": f"{p['sellamt']:.2f}",
                    "symbolgroup": "EQ", "strikeprice": "-1", "optiontype": "", "expirydate": "",
                    "lotsize": "1", "cfbuyqty": "0", "cfsellqty": "0", "cfbuyamount": "0.00",
                    "cfsellamount": "0.00", "buyavgprice": f"{buyavg:.2f}",
                    "sellavgprice": f"{sellavg:.2f}", "avgnetprice": f"{netprice:.2f}",
                    "netvalue": f"{p['sellamt'] - p['buyamt']:.2f}", "netqty": str(net),
                    "totalbuyvalue": f"{p['buyamt']:.2f}", "totalsellvalue": f"{p['sellamt']:.2f}",
                    "cfbuyavgprice": "0.00", "cfsellavgprice": "0.00",
                    "totalbuyavgprice": f"{buyavg:.2f}", "totalsellavgprice": f"{sellavg:.2f}",
                    "netprice": f"{netprice:.2f}", "ltp": f"{ltp:.2f}",
                }
            )  # fmt: skip
        return _ok(rows or None)

    async def _holdings(self, request: web.Request) -> web.StreamResponse:
        return _ok(self.holdings)

    async def _ltp(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        scrip = self.scrips.get((str(body.get("exchange")), str(body.get("symboltoken"))))
        if scrip is None:
            raise AngelFailure("AB1009", "Symbol Not Found")
        ltp = float(Decimal(scrip.ltp))
        return _ok(
            {
                "exchange": scrip.exch_seg, "tradingsymbol": scrip.symbol,
                "symboltoken": scrip.token, "open": ltp, "high": ltp, "low": ltp,
                "close": ltp, "ltp": ltp,
            }
        )  # fmt: skip

    async def _candles(self, request: web.Request) -> web.StreamResponse:
        body = request[BODY]
        self.candle_requests.append(dict(body))
        interval = str(body.get("interval"))
        if interval not in INTERVAL_DAYS:
            raise AngelFailure("AB13000", f"Invalid interval {interval}")
        step, max_days = INTERVAL_DAYS[interval]
        start = datetime.strptime(self._need(body, "fromdate"), "%Y-%m-%d %H:%M").replace(
            tzinfo=IST
        )
        end = datetime.strptime(self._need(body, "todate"), "%Y-%m-%d %H:%M").replace(tzinfo=IST)
        if end - start > timedelta(days=max_days):
            raise AngelFailure("AB13002", f"Date range exceeds {max_days} days for {interval}")
        scrip = self.scrips.get((str(body.get("exchange")), str(body.get("symboltoken"))))
        if scrip is None:
            raise AngelFailure("AB1009", "Symbol Not Found")
        base = Decimal(scrip.ltp)
        rows = []
        # Sparse on purpose: the first three candles of each session day (all of them for
        # daily candles), enough to check ranges, chunk edges and prices without megabytes.
        day = start.date()
        i = 0
        while day <= end.date():
            if day.weekday() < 5:
                if step >= 86400:
                    times = [datetime(day.year, day.month, day.day, tzinfo=IST)]
                else:
                    open_at = datetime(day.year, day.month, day.day, 9, 15, tzinfo=IST)
                    times = [open_at + timedelta(seconds=step * k) for k in range(3)]
                for at in times:
                    if start <= at < end:
                        o = base + Decimal(i % 7) / 20
                        rows.append(
                            [
                                at.strftime("%Y-%m-%dT%H:%M:%S+05:30"),
                                float(o),
                                float(o + Decimal("1.5")),
                                float(o - Decimal("1.25")),
                                float(o + Decimal("0.5")),
                                1000 + i,
                            ]
                        )
                        i += 1
            day += timedelta(days=1)
        return _ok(rows)

    async def _master(self, request: web.Request) -> web.StreamResponse:
        self.master_downloads += 1
        return web.json_response([s.master() for s in self.scrips.values()])

    # -- market-data socket -------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        auth = headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            ok = (
                auth in self.jwts
                and headers.get("x-api-key") == self.api_key
                and headers.get("x-client-code") == self.client_code
                and headers.get("x-feed-token") in self.feed_tokens
            )
        if not ok:
            self.ws_refused += 1
            return web.Response(status=401, text="Unauthorized", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws, request)
        self.sockets.append(sock)
        self.ws_connects += 1
        try:
            async for msg in ws:
                if msg.type != WSMsgType.TEXT:
                    continue
                text = msg.data
                self.ws_texts.append(text)
                if text == "ping":
                    if self.answer_ping and not self.silent:
                        await ws.send_str("pong")
                    continue
                try:
                    command = json.loads(text)
                    params = command["params"]
                    mode = int(params["mode"])
                    wanted = [
                        (int(group["exchangeType"]), str(token))
                        for group in params["tokenList"]
                        for token in group["tokens"]
                    ]
                except (ValueError, KeyError, TypeError):
                    await ws.send_str(
                        json.dumps(
                            {"errorCode": "E1001", "errorMessage": "Invalid Request Payload."}
                        )
                    )
                    continue
                if command.get("action") == 1:
                    new = [w for w in wanted if w not in sock.modes]
                    if len(sock.modes) + len(new) > self.tokens_per_connection:
                        error = {
                            "correlationID": command.get("correlationID"),
                            "errorCode": "E1002",
                            "errorMessage": "Invalid Request. Subscription Limit Exceeded.",
                        }
                        self.ws_errors_sent.append(error)
                        await ws.send_str(json.dumps(error))
                        continue
                    for w in wanted:
                        sock.modes[w] = mode
                    await self._send_snapshot(sock, wanted)
                elif command.get("action") == 0:
                    for w in wanted:
                        sock.modes.pop(w, None)
        finally:
            if sock in self.sockets:
                self.sockets.remove(sock)
        return ws

    # -- order-update socket ------------------------------------------------------------------

    def _order_message(self, order: dict[str, Any] | None) -> dict[str, Any]:
        status = "AB00" if order is None else ORDER_STATUS_CODES.get(order["orderstatus"], "AB04")
        return {
            "user-id": self.client_code,
            "status-code": "200",
            "order-status": status,
            "error-message": "",
            "orderData": dict(order) if order is not None else {"orderid": ""},
        }

    def _notify(self, order: dict[str, Any]) -> None:
        """Push the order's record to every order socket (from any thread; lock held)."""
        message = self._order_message(order)
        loop = self._loop
        if loop is None or not self.order_sockets:
            return
        self.order_updates_sent.append(message)
        text = json.dumps(message)

        async def send() -> None:
            for sock in list(self.order_sockets):
                if not sock.ws.closed:
                    with contextlib.suppress(Exception):
                        await sock.ws.send_str(text)

        loop.call_soon_threadsafe(lambda: loop.create_task(send()))

    async def _order_ws(self, request: web.Request) -> web.StreamResponse:
        headers = request.headers
        self.order_socket_headers.append(
            {k: headers.get(k, "") for k in ("x-api-key", "x-client-code", "x-feed-token")}
        )
        if self.refuse_order_sockets:
            self.order_socket_refused += 1
            return web.Response(status=503, text="Service Unavailable", content_type="text/plain")
        auth = headers.get("Authorization", "").removeprefix("Bearer ")
        with self._lock:
            ok = auth in self.jwts
        if not ok:
            self.order_socket_refused += 1
            return web.Response(status=401, text="Unauthorized", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws, request)
        self.order_socket_connects += 1
        await ws.send_str(json.dumps(self._order_message(None)))
        self.order_sockets.append(sock)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT and msg.data == "ping" and not self.silent:
                    await ws.send_str("pong")
        finally:
            if sock in self.order_sockets:
                self.order_sockets.remove(sock)
        return ws

    def drop_order_sockets(self) -> int:
        """Cut every order-update connection without a close frame."""

        async def drop() -> int:
            dropped = 0
            for sock in list(self.order_sockets):
                transport = sock.request.transport
                if transport is not None:
                    transport.abort()  # type: ignore[attr-defined]
                    dropped += 1
            return dropped

        result: int = self._on_loop(drop)
        return result

    def _quote_for(self, exchange_type: int, token: str) -> Quote | None:
        exchange = next((e for e, t in EXCHANGE_TYPES.items() if t == exchange_type), None)
        scrip = self.scrips.get((exchange or "", token))
        if scrip is None:
            return None
        ms = int(time.time() * 1000)
        quote = sample_quote(exchange_type, token, scrip.ltp, ms)
        quote.sequence = next(self.sequence)
        return quote

    async def _send_snapshot(self, sock: _Socket, wanted: list[tuple[int, str]]) -> None:
        if self.silent:
            return
        for exchange_type, token in wanted:
            quote = self._quote_for(exchange_type, token)
            if quote is not None and not sock.ws.closed:
                await sock.ws.send_bytes(encode(quote, sock.modes[(exchange_type, token)]))

    def _on_loop(self, coro_fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("fake Angel One is not running")
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result(5)

    def push_ticks(self) -> int:
        """Send every socket one packet per subscribed token in its mode."""

        async def push() -> int:
            sent = 0
            if self.silent:
                return sent
            for sock in list(self.sockets):
                for (exchange_type, token), mode in list(sock.modes.items()):
                    quote = self._quote_for(exchange_type, token)
                    if quote is not None and not sock.ws.closed:
                        await sock.ws.send_bytes(encode(quote, mode))
                        sent += 1
            return sent

        result: int = self._on_loop(push)
        return result

    def drop_sockets(self) -> int:
        """Cut every stream connection without a close frame, as a network failure would."""

        async def drop() -> int:
            dropped = 0
            for sock in list(self.sockets):
                transport = sock.request.transport
                if transport is not None:
                    transport.abort()  # type: ignore[attr-defined]
                    dropped += 1
            return dropped

        result: int = self._on_loop(drop)
        return result

    def subscriptions(self) -> list[dict[tuple[int, str], int]]:
        async def read() -> list[dict[tuple[int, str], int]]:
            return [dict(s.modes) for s in self.sockets if not s.ws.closed]

        result: list[dict[tuple[int, str], int]] = self._on_loop(read)
        return result


__all__ = ["LTP", "QUOTE", "SNAP_QUOTE", "FakeAngel", "ScripRow", "default_scrips"]
