"""A local ICICI Breeze: REST and Socket.IO on 127.0.0.1, driven by the real breeze-connect SDK.

What it speaks (research/brokers.md §1.3, §2.3, §6, §9.2):

- REST under ``/breezeapi/api/v1/``. Every call but ``customerdetails`` is checked the way
  ICICI checks it: ``X-Checksum: token sha256(X-Timestamp + body + secret)``, the timestamp
  within two minutes, ``X-AppKey`` and ``X-SessionToken = base64(user:session_key)``. GETs
  carry a JSON body. Answers are HTTP 200 with ``{"Success", "Status", "Error"}``; a bad
  checksum is ``Status 5 'Authentication Fail :: Invalid Checksum.'``, an expired session
  ``Status 500 'Invalid User Details'``, the daily cap ``Status 5 'Limit exceed: API call
  per day: '`` (Breeze-Python-SDK#144).
- ``customerdetails`` exchanges the login's ``API_Session`` for base64 ``user:session_key``.
- ``/api/v2/historicalcharts``: query parameters, ``X-SessionToken`` and ``apikey`` headers,
  at most 1,000 candles per answer, IST wall-clock ``datetime`` strings.
- ``/SecurityMaster.zip`` in ICICI's layout and ``/apiuser/login``, whose page posts
  ``API_Session`` to the registered redirect as ICICI's does.
- Socket.IO (python-socketio's own server): ``auth={"user", "token"}`` checked on connect;
  ``join``/``leave`` with ``"4.1!2885"``-style tokens; ``stock`` events carrying the raw
  positional lists (21 items for cash, 23 for F&O, ``[token, epoch, levels]`` for depth),
  ``ttv`` as text like ``'323.61C'``, ``ltt`` as epoch seconds.

Behind it: a small OMS (Ordered -> Executed | Cancelled | Rejected, partial fills, trades)
and one-shot fault injection per route (``inject``). It runs on its own loop in a thread so
the blocking SDK (in the adapter's worker threads) and async tests can share it.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import html
import itertools
import json
import secrets
import threading
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import socketio  # type: ignore[import-untyped]
from aiohttp import web

from services.brokers.breeze.config import BreezeEndpoints
from tests.fakes.breeze.master import Scrip, build_master_zip, default_scrips
from tests.fakes.loopback import LoopbackServer

IST = ZoneInfo("Asia/Kolkata")
FAULTS = frozenset(
    {
        "timeout_after",
        "timeout_before",
        "drop_after",
        "limit",
        "too_many",
        "funds",
        "session",
        "500_html",
        "checksum",
    }
)
PRODUCTS = ("cash", "futures", "options", "mtf", "btst", "margin")
ORDER_TYPES = ("limit", "market", "stoploss")
VALIDITIES = ("day", "ioc", "vtc")
WORKING = ("Ordered", "Requested", "Partially Executed")
ORDER_ROOM = "order-notifications"
# breeze_connect's TUX_TO_USER_MAP["orderStatus"], reversed: the letter a notification carries.
STATUS_LETTERS = {
    "Requested": "R", "Queued": "Q", "Ordered": "O", "Partially Executed": "P",
    "Executed": "E", "Rejected": "J", "Expired": "X", "Cancelled": "C",
}  # fmt: skip
LIMIT_ERROR = "Limit exceed: API call per day: "
_BODY = web.RequestKey("body", str)


def _ok(data: Any) -> web.Response:
    return web.json_response({"Success": data, "Status": 200, "Error": None})


def _err(message: str, status: int = 500) -> web.Response:
    return web.json_response({"Success": None, "Status": status, "Error": message})


class BreezeRefusal(Exception):
    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def _num(value: Decimal) -> float:
    return float(value)


def _money(value: Decimal) -> str:
    return str(value.quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN))


@dataclass
class Journal:
    requests: list[tuple[str, str, dict[str, str], str]] = field(default_factory=list)

    def count(self, method: str, path_end: str) -> int:
        return sum(1 for m, p, _, _ in self.requests if m == method and p.endswith(path_end))


class FakeBreeze(LoopbackServer):
    """The fake server, its OMS and its streams. A context manager, or start()/stop()."""

    label = "fake Breeze"

    def __init__(
        self,
        *,
        api_key: str = "fake+breeze=key%1",
        api_secret: str = "fakebreezesecret",
        user_id: str = "FAKEUSER01",
        hang_seconds: float = 1.5,
        daily_limit: int = 5000,
        scrips: list[Scrip] | None = None,
        today: date | None = None,
        ping_interval: float = 1.0,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.user_id = user_id
        self.hang_seconds = hang_seconds
        self.daily_limit = daily_limit
        self.today = today or datetime.now(IST).date()
        self.scrips: list[Scrip] = scrips or default_scrips(self.today)
        self.prices: dict[tuple[str, str], Decimal] = {
            (s.exchange, s.token): Decimal(s.last_price) for s in self.scrips
        }
        self.master_zip = build_master_zip(self.scrips)
        self.api_sessions: set[str] = set()
        self.session_keys: set[str] = set()
        self.redirect_url = "http://127.0.0.1:9/breeze/callback"
        self.calls_today = 0
        self.master_downloads = 0
        self.orders: dict[str, dict[str, Any]] = {}
        self.trades: list[dict[str, Any]] = []
        self.funds = Decimal("500000")
        self.holdings: list[dict[str, Any]] = [
            {
                "stock_code": "STABAN",
                "exchange_code": "NSE",
                "quantity": "10",
                "average_price": "701.50",
                "booked_profit_loss": "0",
                "current_market_price": "812.40",
                "change_percentage": "0.92",
                "answer_flag": "N",
                "product_type": None,
                "expiry_date": None,
                "strike_price": None,
                "right": None,
                "category_index_per_stock": None,
                "action": None,
                "realized_profit": None,
                "unrealized_profit": None,
                "open_position_value": None,
                "portfolio_charges": None,
            }
        ]
        self.journal = Journal()
        self._faults: deque[tuple[str, str]] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.sio: Any = None
        self.subscriptions: dict[str, set[str]] = {}
        self.socket_connects = 0
        self.socket_refusals = 0
        self.max_tokens_per_connection: int | None = None
        self.ping_interval = ping_interval
        self.silent = False
        self.newest_sid: str | None = None
        self.refuse_sockets = False  # Socket.IO handshakes answered 503 (a server that is down)
        self.order_notices: list[list[Any]] = []

    # -- lifecycle --------------------------------------------------------------------------

    @property
    def endpoints(self) -> BreezeEndpoints:
        return BreezeEndpoints.local(self.base_url)

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self.sio = socketio.AsyncServer(
            async_mode="aiohttp",
            logger=False,
            engineio_logger=False,
            ping_interval=self.ping_interval,
        )
        self.sio.attach(app)
        self.sio.on("connect", self._sio_connect)
        self.sio.on("disconnect", self._sio_disconnect)
        self.sio.on("join", self._sio_join)
        self.sio.on("leave", self._sio_leave)
        self._routes(app)
        return app

    async def before_shutdown(self) -> None:
        with contextlib.suppress(Exception):
            for sid in list(self.subscriptions):
                await self.sio.disconnect(sid)

    # -- test controls ----------------------------------------------------------------------

    def issue_api_session(self) -> str:
        """What ICICI's login page posts to the redirect after the trader's login and OTP."""
        token = str(secrets.randbelow(90_000_000) + 10_000_000)
        with self._lock:
            self.api_sessions.add(token)
        return token

    def expire_session(self) -> None:
        with self._lock:
            self.session_keys.clear()
            self.api_sessions.clear()

    def inject(self, route: str, fault: str) -> None:
        """Fail the next request to ``route`` (place, modify, cancel, orders, quotes,
        funds, history, any) with ``fault`` (see ``FAULTS``)."""
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append((route, fault))

    def scrip(self, exchange: str, token: str) -> Scrip:
        for s in self.scrips:
            if s.exchange == exchange and s.token == token:
                return s
        raise KeyError((exchange, token))

    def set_price(self, exchange: str, token: str, price: str) -> None:
        with self._lock:
            self.prices[(exchange, token)] = Decimal(price)

    def fill(self, order_id: str, quantity: int | None = None, price: str | None = None) -> None:
        with self._lock:
            order = self.orders[order_id]
            if order["status"] not in WORKING:
                raise ValueError(f"order {order_id} is {order['status']}")
            qty = quantity or int(order["pending_quantity"])
            at = Decimal(price) if price else Decimal(order["price"])
            self._fill(order, qty, at)
            self._notify(order)

    def placed(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self.orders.values()]

    # -- HTTP plumbing ----------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        v1 = "/breezeapi/api/v1/"
        r.add_get(v1 + "customerdetails", self._customer_details)
        r.add_get(v1 + "funds", self._funds)
        r.add_get(v1 + "order", self._order_get)
        r.add_post(v1 + "order", self._place)
        r.add_put(v1 + "order", self._modify)
        r.add_delete(v1 + "order", self._cancel)
        r.add_get(v1 + "trades", self._trades)
        r.add_get(v1 + "quotes", self._quotes)
        r.add_get(v1 + "portfoliopositions", self._positions)
        r.add_get(v1 + "portfolioholdings", self._holdings)
        r.add_get("/api/v2/historicalcharts", self._history)
        r.add_get("/SecurityMaster.zip", self._master)
        r.add_get("/apiuser/login", self._login_page)

    @staticmethod
    def _route_of(request: web.Request) -> str:
        path, method = request.path, request.method
        if path.endswith("/order"):
            return {"POST": "place", "PUT": "modify", "DELETE": "cancel"}.get(method, "orders")
        tail = path.rstrip("/").rsplit("/", 1)[-1]
        return {"historicalcharts": "history"}.get(tail, tail)

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            for i, (target, fault) in enumerate(self._faults):
                if target in (route, "any"):
                    del self._faults[i]
                    return fault
        return None

    def _session_token(self, session_key: str) -> str:
        return base64.b64encode(f"{self.user_id}:{session_key}".encode()).decode()

    def _check_signed(self, request: web.Request, body: str) -> web.Response | None:
        headers = request.headers
        stamp = headers.get("X-Timestamp", "")
        expected = hashlib.sha256((stamp + body + self.api_secret).encode()).hexdigest()
        if headers.get("X-Checksum") != f"token {expected}":
            return _err("Authentication Fail :: Invalid Checksum.", 5)
        try:
            sent = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        except ValueError:
            return _err("Authentication Fail :: Invalid Timestamp.", 5)
        if abs((datetime.now(UTC) - sent).total_seconds()) > 120:
            return _err("Authentication Fail :: Request Expired.", 5)
        if headers.get("X-AppKey") != self.api_key:
            return _err("Public Key does not exist.", 500)
        with self._lock:
            valid = {self._session_token(k) for k in self.session_keys}
        if headers.get("X-SessionToken") not in valid:
            return _err("Invalid User Details", 500)
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path.startswith("/socket.io"):
            if self.refuse_sockets:
                self.socket_refusals += 1
                return web.Response(status=503, text="Service Unavailable")
            result: web.StreamResponse = await handler(request)
            return result
        body = await request.text() if request.can_read_body else ""
        self.journal.requests.append((request.method, request.path, dict(request.headers), body))
        route = self._route_of(request)
        api = request.path.startswith(("/breezeapi/", "/api/v2/"))
        if api:
            with self._lock:
                self.calls_today += 1
                over = self.calls_today > self.daily_limit
            if over:
                return _err(LIMIT_ERROR, 5)
        if request.path.startswith("/breezeapi/") and route != "customerdetails":
            refusal = self._check_signed(request, body)
            if refusal is not None:
                return refusal
        if request.path.startswith("/api/v2/"):
            with self._lock:
                valid = {self._session_token(k) for k in self.session_keys}
            if request.headers.get("X-SessionToken") not in valid:
                return _err("Invalid User Details", 500)
            if request.headers.get("apikey") != self.api_key:
                return _err("Public Key does not exist.", 500)
        fault = self._take_fault(route) if api else None
        if fault == "limit":
            return _err(LIMIT_ERROR, 5)
        if fault == "too_many":
            return _err("Limit exceed: API call per minute: ", 5)
        if fault == "funds":
            return _err("Insufficient limit : Limit required to place this order")
        if fault == "session":
            return _err("Invalid User Details", 500)
        if fault == "checksum":
            return _err("Authentication Fail :: Invalid Checksum.", 5)
        if fault == "500_html":
            return web.Response(
                status=502,
                text="<html><body>502 Bad Gateway</body></html>",
                content_type="text/html",
            )
        if fault == "timeout_before":
            await asyncio.sleep(self.hang_seconds)
            return _err("abandoned", 504)
        request[_BODY] = body
        try:
            response: web.StreamResponse = await handler(request)
        except BreezeRefusal as exc:
            response = _err(exc.message, exc.status)
        if fault == "timeout_after":
            await asyncio.sleep(self.hang_seconds)
        if fault == "drop_after":
            transport = request.transport
            if transport is not None:
                transport.abort()  # type: ignore[attr-defined]
        return response

    @staticmethod
    def _json(request: web.Request) -> dict[str, Any]:
        text = request.get(_BODY) or ""
        if not text:
            return {}
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise BreezeRefusal("Request body is not JSON") from exc
        if not isinstance(data, dict):
            raise BreezeRefusal("Request body is not a JSON object")
        return data

    # -- session -----------------------------------------------------------------------------

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("api_key") != self.api_key:
            return web.Response(status=400, text="Invalid API key", content_type="text/plain")
        session = self.issue_api_session()
        page = (
            "<html><body onload='document.forms[0].submit()'>"
            f"<form method='post' action='{html.escape(self.redirect_url, quote=True)}'>"
            f"<input type='hidden' name='API_Session' value='{session}'/>"
            "</form></body></html>"
        )
        return web.Response(text=page, content_type="text/html")

    async def _customer_details(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        if data.get("AppKey") != self.api_key:
            return _err("Public Key does not exist.", 500)
        with self._lock:
            known = data.get("SessionToken") in self.api_sessions
            if known:
                session_key = secrets.token_hex(12)
                self.session_keys.add(session_key)
        if not known:
            return _err("Resource not available.", 500)
        return _ok(
            {
                "exg_trade_date": {"NSE": self.today.strftime("%d-%b-%Y")},
                "exg_status": {"NSE": "O", "BSE": "O", "FNO": "Y"},
                "segments_allowed": {"Trading": "Y", "Equity": "Y", "Derivatives": "Y"},
                "idirect_userid": self.user_id,
                "session_token": self._session_token(session_key),
                "idirect_user_name": "FAKE TRADER",
                "idirect_ORD_TYP": "N",
                "idirect_lastlogin_time": datetime.now(IST).strftime("%d-%b-%Y %H:%M:%S"),
                "mf_holding_mode_popup_flg": "N",
                "commodity_exchange_status": "N",
                "commodity_trade_date": "",
                "commodity_allowed": "N",
            }
        )

    async def _master(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.master_downloads += 1
        return web.Response(body=self.master_zip, content_type="application/zip")

    # -- market data -------------------------------------------------------------------------

    def _find(self, data: dict[str, Any]) -> Scrip:
        exchange = str(data.get("exchange_code", "")).upper()
        code = data.get("stock_code", "")
        if exchange in ("NSE", "BSE"):
            for s in self.scrips:
                if s.exchange == exchange and s.stock_code == code:
                    return s
            raise BreezeRefusal("Stock-Code not found.")
        product = str(data.get("product_type") or data.get("product") or "").lower()
        expiry = str(data.get("expiry_date") or "")[:10]
        right = str(data.get("right") or "others").lower()
        strike = Decimal(str(data.get("strike_price") or "0"))
        for s in self.scrips:
            if (
                s.exchange == exchange
                and s.stock_code == code
                and s.product == product
                and s.expiry is not None
                and s.expiry.isoformat() == expiry
                and (product == "futures" or (s.right == right and Decimal(s.strike) == strike))
            ):
                return s
        raise BreezeRefusal("Stock-Code not found.")

    def _quote(self, s: Scrip) -> dict[str, Any]:
        ltp = self.prices[(s.exchange, s.token)]
        close = Decimal(s.last_price)
        band = close * Decimal("0.2") if s.product == "cash" else close * Decimal("0.9")
        tick = Decimal(s.tick)
        return {
            "exchange_code": s.exchange,
            "product_type": "" if s.product == "cash" else s.product.capitalize(),
            "stock_code": s.stock_code,
            "expiry_date": s.expiry.strftime("%d-%b-%Y") if s.expiry else None,
            "right": s.right.capitalize() if s.product == "options" else None,
            "strike_price": _num(Decimal(s.strike)),
            "ltp": _num(ltp),
            "ltt": datetime.now(IST).strftime("%d-%b-%Y %H:%M:%S"),
            "best_bid_price": _num(ltp - tick),
            "best_bid_quantity": "100",
            "best_offer_price": _num(ltp + tick),
            "best_offer_quantity": "120",
            "open": _num(close),
            "high": _num(max(close, ltp)),
            "low": _num(min(close, ltp)),
            "previous_close": _num(close),
            "ltp_percent_change": _num(((ltp - close) * 100 / close).quantize(Decimal("0.01"))),
            "upper_circuit": _num(((close + band) / tick).to_integral_value() * tick),
            "lower_circuit": _num(((close - band) / tick).to_integral_value() * tick),
            "total_quantity_traded": "123456",
            "spot_price": _num(ltp),
        }

    async def _quotes(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        s = self._find(data)
        rows = [self._quote(s)]
        if s.exchange == "BSE":  # Breeze answers a BSE quote with the NSE row first
            nse = [x for x in self.scrips if x.exchange == "NSE" and x.stock_code == s.stock_code]
            rows = [self._quote(nse[0]), rows[0]] if nse else rows
        return _ok(rows)

    async def _history(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        interval = q.get("interval", "")
        step = {"1second": 1, "1minute": 60, "5minute": 300, "30minute": 1800, "1day": 86400}
        if interval not in step:
            return _err(
                "Interval should be either '1second','1minute', '5minute', '30minute', or '1day'"
            )
        data = {
            "exchange_code": q.get("exch_code", ""),
            "stock_code": q.get("stock_code", ""),
            "product_type": q.get("product_type", "cash"),
            "expiry_date": q.get("expiry_date", ""),
            "right": q.get("right", ""),
            "strike_price": q.get("strike_price", ""),
        }
        s = self._find(data)
        start = datetime.strptime(q["from_date"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        end = datetime.strptime(q["to_date"], "%Y-%m-%dT%H:%M:%S.000Z").replace(tzinfo=UTC)
        candles: list[dict[str, Any]] = []
        seconds = step[interval]
        t = start.astimezone(IST)
        base = Decimal(s.last_price)
        tick = Decimal(s.tick)
        while t < end and len(candles) < 1000:
            local = t
            in_session = local.weekday() < 5 and (
                seconds == 86400
                or ((local.hour, local.minute) >= (9, 15) and (local.hour, local.minute) < (15, 30))
            )
            if in_session:
                wiggle = Decimal(int(t.timestamp() // seconds) % 7 - 3) * tick
                o = base + wiggle
                c = o + tick
                row = {
                    "datetime": local.strftime("%Y-%m-%d %H:%M:%S"),
                    "stock_code": s.stock_code,
                    "exchange_code": s.exchange,
                    "open": _num(o),
                    "high": _num(c + tick),
                    "low": _num(o - tick),
                    "close": _num(c),
                    "volume": 1000 + len(candles),
                }
                if s.product != "cash":
                    row.update(
                        product_type=s.product.capitalize(),
                        expiry_date=s.expiry.strftime("%d-%b-%Y") if s.expiry else None,
                        right=s.right.capitalize(),
                        strike_price=_num(Decimal(s.strike)),
                        open_interest=50000,
                        count=0,
                    )
                candles.append(row)
            if seconds == 86400:
                t = (t + timedelta(days=1)).replace(hour=0, minute=0, second=0)
            else:
                t = t + timedelta(seconds=seconds)
        return _ok(candles)

    # -- OMS ---------------------------------------------------------------------------------

    def _new_order_id(self, exchange: str) -> str:
        letter = {"NSE": "N", "BSE": "B", "NFO": "N", "BFO": "B"}.get(exchange, "N")
        return f"{self.today.strftime('%Y%m%d')}{letter}{300000000 + next(self._ids)}"

    @staticmethod
    def _word(value: str) -> str:
        return {
            "stoploss": "StopLoss",
            "ioc": "IoC",
            "vtc": "VTC",
            "btst": "BTST",
            "mtf": "MTF",
        }.get(value, value.capitalize())

    def _validate(self, data: dict[str, Any]) -> tuple[Scrip, dict[str, Any]]:
        for name in (
            "stock_code",
            "exchange_code",
            "product",
            "action",
            "order_type",
            "quantity",
            "validity",
        ):
            if not str(data.get(name) or ""):
                raise BreezeRefusal(f"{name.replace('_', '-').capitalize()} cannot be empty")
        product = str(data["product"]).lower()
        if product not in PRODUCTS:
            raise BreezeRefusal(
                "Product should be either 'futures', 'options', 'cash', 'btst' or 'mtf'"
            )
        if product == "margin":
            raise BreezeRefusal("Margin product is not allowed through API")
        action = str(data["action"]).lower()
        if action not in ("buy", "sell"):
            raise BreezeRefusal("Action should be either 'buy', or 'sell'")
        order_type = str(data["order_type"]).lower()
        if order_type not in ORDER_TYPES:
            raise BreezeRefusal("Order-type should be either 'limit' or 'stoploss'")
        validity = str(data["validity"]).lower()
        if validity not in VALIDITIES:
            raise BreezeRefusal("Validity should be either 'day', 'ioc', or 'vtc'")
        s = self._find(
            {**data, "product_type": product if product in ("futures", "options") else ""}
        )
        quantity = str(data["quantity"])
        if not quantity.isdigit() or int(quantity) <= 0:
            raise BreezeRefusal("Quantity should be a positive whole number")
        if int(quantity) % s.lot:
            raise BreezeRefusal(f"Quantity should be in multiples of lot size {s.lot}")
        tick = Decimal(s.tick)
        price = Decimal(str(data.get("price") or "0"))
        if order_type in ("limit", "stoploss") and price <= 0:
            raise BreezeRefusal("Price cannot be empty")
        if price and price % tick:
            raise BreezeRefusal(f"Price should be in multiples of tick size {s.tick}")
        trigger = Decimal(str(data.get("stoploss") or "0"))
        if order_type == "stoploss" and trigger <= 0:
            raise BreezeRefusal("Stoploss trigger price cannot be empty")
        quote = self._quote(s)
        upper, lower = Decimal(str(quote["upper_circuit"])), Decimal(str(quote["lower_circuit"]))
        if price and not lower <= price <= upper:
            raise BreezeRefusal(f"Price is outside the circuit band {lower} - {upper}")
        remark = str(data.get("user_remark") or "")
        if len(remark) > 20 or (remark and not remark.isalnum()):
            raise BreezeRefusal("User remark should be at most 20 letters or digits")
        return s, {
            "product": product,
            "action": action,
            "order_type": order_type,
            "validity": validity,
            "quantity": int(quantity),
            "price": price,
            "trigger": trigger,
            "remark": remark,
        }

    async def _place(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        s, v = self._validate(data)
        with self._lock:
            if v["product"] == "cash" and v["action"] == "buy":
                cost = v["price"] * v["quantity"]
                if cost > self.funds:
                    raise BreezeRefusal("Insufficient limit : Limit required to place this order")
            order_id = self._new_order_id(s.exchange)
            now = datetime.now(IST)
            order = {
                "order_id": order_id,
                "exchange_order_id": None,
                "exchange_code": s.exchange,
                "stock_code": s.stock_code,
                "product_type": self._word(v["product"]),
                "action": self._word(v["action"]),
                "order_type": self._word(v["order_type"]),
                "stoploss": _money(v["trigger"]),
                "quantity": str(v["quantity"]),
                "price": _money(v["price"]),
                "validity": self._word(v["validity"]),
                "disclosed_quantity": "0",
                "expiry_date": s.expiry.strftime("%d-%b-%Y") if s.expiry else None,
                "right": s.right.capitalize() if s.product == "options" else None,
                "strike_price": _num(Decimal(s.strike)) if s.product == "options" else 0.0,
                "average_price": "0",
                "cancelled_quantity": "0",
                "pending_quantity": str(v["quantity"]),
                "status": "Ordered",
                "user_remark": v["remark"],
                "order_datetime": now.strftime("%d-%b-%Y %H:%M:%S"),
                "parent_order_id": None,
                "modification_number": None,
                "exchange_acknowledgement_date": now.strftime("%d-%b-%Y %H:%M:%S"),
                "SLTP_price": None,
                "exchange_acknowledge_number": None,
                "initial_limit": None,
                "intial_sltp": None,
                "LTP": None,
                "limit_offset": None,
                "mbc_flag": None,
                "cutoff_price": None,
                "validity_date": None,
                "_filled": 0,
                "_token": s.token,
            }
            self.orders[order_id] = order
            self._maybe_match(order)
            self._notify(order)
        return _ok(
            {
                "order_id": order_id,
                "message": "Successfully Placed the order",
                "user_remark": v["remark"],
            }
        )

    def _maybe_match(self, order: dict[str, Any]) -> None:
        """A marketable limit fills at once at the last price; IOC leftovers are cancelled."""
        if order["order_type"] != "Limit":
            return
        ltp = self.prices[(order["exchange_code"], order["_token"])]
        price = Decimal(order["price"])
        buy = order["action"] == "Buy"
        if (buy and price >= ltp) or (not buy and price <= ltp):
            self._fill(order, int(order["pending_quantity"]), ltp)
        elif order["validity"] == "IoC":
            order["status"] = "Cancelled"
            order["cancelled_quantity"] = order["pending_quantity"]
            order["pending_quantity"] = "0"

    def _fill(self, order: dict[str, Any], quantity: int, price: Decimal) -> None:
        pending = int(order["pending_quantity"])
        quantity = min(quantity, pending)
        filled = order["_filled"]
        average = Decimal(order["average_price"])
        total = filled + quantity
        order["average_price"] = _money((average * filled + price * quantity) / total)
        order["_filled"] = total
        order["pending_quantity"] = str(pending - quantity)
        order["status"] = "Executed" if pending - quantity == 0 else "Partially Executed"
        order["exchange_order_id"] = (
            order["exchange_order_id"] or f"11000000{next(self._trade_ids):08d}"
        )
        now = datetime.now(IST)
        self.trades.append(
            {
                "match_account": "8500000000",
                "order_type": order["order_type"],
                "book_type": "Trade-Book",
                "trade_date": now.strftime("%d-%b-%Y"),
                "stock_code": order["stock_code"],
                "action": order["action"],
                "quantity": str(quantity),
                "average_cost": _money(price),
                "brokerage_amount": "0.00",
                "product_type": order["product_type"],
                "exchange_code": order["exchange_code"],
                "order_id": order["order_id"],
                "segment": None,
                "settlement_code": None,
                "dp_id": None,
                "client_id": None,
                "ltp": _money(price),
                "eatm_withheld_amount": None,
                "cash_withheld_amount": None,
                "total_taxes": "0.00",
                "expiry_date": order["expiry_date"],
                "right": order["right"],
                "strike_price": order["strike_price"],
                "trade_id": f"{len(self.trades) + 1:08d}",
                "exchange_trade_id": f"{len(self.trades) + 1:08d}",
                "exchange_trade_time": now.strftime("%d-%b-%Y %H:%M:%S"),
                "execution_price": _money(price),
                "executed_quantity": str(quantity),
            }
        )

    @staticmethod
    def _public(order: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in order.items() if not k.startswith("_")}

    async def _order_get(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        exchange = str(data.get("exchange_code", "")).upper()
        if not exchange:
            return _err("Exchange-Code cannot be empty")
        with self._lock:
            if data.get("order_id"):
                order = self.orders.get(str(data["order_id"]))
                if order is None or order["exchange_code"] != exchange:
                    return _err("No Data Found")
                return _ok([self._public(order)])
            if not data.get("from_date") or not data.get("to_date"):
                return _err("From-Date cannot be empty")
            rows = [self._public(o) for o in self.orders.values() if o["exchange_code"] == exchange]
        return _ok(rows or None) if rows else _err("No Data Found")

    async def _modify(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        with self._lock:
            order = self.orders.get(str(data.get("order_id", "")))
            if order is None:
                return _err("No Data Found")
            if order["status"] not in WORKING:
                return _err("Order has already been executed and cannot be modified.")
            if data.get("quantity"):
                quantity = int(str(data["quantity"]))
                if quantity <= order["_filled"]:
                    return _err("Quantity should be more than the executed quantity")
                order["quantity"] = str(quantity)
                order["pending_quantity"] = str(quantity - order["_filled"])
            if data.get("price"):
                order["price"] = _money(Decimal(str(data["price"])))
            if data.get("stoploss"):
                order["stoploss"] = _money(Decimal(str(data["stoploss"])))
            if data.get("order_type"):
                order["order_type"] = self._word(str(data["order_type"]).lower())
            order["modification_number"] = str(int(order["modification_number"] or 0) + 1)
            self._maybe_match(order)
            self._notify(order)
        return _ok({"message": "Successfully Modified the order", "order_id": order["order_id"]})

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        with self._lock:
            order = self.orders.get(str(data.get("order_id", "")))
            if order is None:
                return _err("No Data Found")
            if order["status"] not in WORKING:
                return _err("Order already executed or cancelled")
            order["status"] = "Cancelled"
            order["cancelled_quantity"] = order["pending_quantity"]
            order["pending_quantity"] = "0"
            self._notify(order)
        return _ok({"order_id": order["order_id"], "message": "Successfully cancelled the order"})

    async def _trades(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        exchange = str(data.get("exchange_code", "")).upper()
        with self._lock:
            rows = [dict(t) for t in self.trades if t["exchange_code"] == exchange]
            if data.get("order_id"):
                rows = [t for t in rows if t["order_id"] == data["order_id"]]
        return _ok(rows) if rows else _err("No Data Found")

    async def _funds(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            blocked = sum(
                (
                    Decimal(t["average_cost"]) * int(t["quantity"])
                    for t in self.trades
                    if t["action"] == "Buy"
                ),
                Decimal(0),
            )
        return _ok(
            {
                "bank_account": "000000000000",
                "total_bank_balance": _num(self.funds),
                "allocated_equity": _num(self.funds / 2),
                "allocated_fno": _num(self.funds / 2),
                "allocated_commodity": 0.0,
                "allocated_currency": 0.0,
                "block_by_trade_equity": _num(blocked),
                "block_by_trade_fno": 0.0,
                "block_by_trade_commodity": 0.0,
                "block_by_trade_currency": 0.0,
                "block_by_trade_balance": _num(blocked),
                "unallocated_balance": "0",
            }
        )

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        net: dict[tuple[str, str, str], dict[str, Any]] = {}
        with self._lock:
            for t in self.trades:
                key = (
                    t["exchange_code"],
                    t["stock_code"],
                    t["product_type"]
                    + str(t["expiry_date"])
                    + str(t["strike_price"])
                    + str(t["right"]),
                )
                row = net.setdefault(key, {"trade": t, "qty": 0, "cost": Decimal(0)})
                sign = 1 if t["action"] == "Buy" else -1
                row["qty"] += sign * int(t["quantity"])
                row["cost"] += sign * Decimal(t["average_cost"]) * int(t["quantity"])
        rows = []
        for row in net.values():
            t, qty = row["trade"], row["qty"]
            if qty == 0:
                continue
            rows.append(
                {
                    "segment": "equity" if t["exchange_code"] in ("NSE", "BSE") else "fno",
                    "product_type": t["product_type"],
                    "exchange_code": t["exchange_code"],
                    "stock_code": t["stock_code"],
                    "expiry_date": t["expiry_date"],
                    "strike_price": str(t["strike_price"]),
                    "right": t["right"] or "Others",
                    "action": "Buy" if qty > 0 else "Sell",
                    "quantity": str(abs(qty)),
                    "average_price": _money(abs(row["cost"] / qty)),
                    "settlement_id": None,
                    "margin_amount": None,
                    "ltp": t["ltp"],
                    "price": t["average_cost"],
                    "stock_index_indicator": None,
                    "cover_quantity": "0",
                    "stoploss_trigger": None,
                    "stoploss": None,
                    "take_profit": None,
                    "available_margin": None,
                    "squareoff_mode": None,
                    "mtf_sell_quantity": None,
                    "mtf_net_amount_payable": None,
                    "mtf_expiry_date": None,
                    "order_id": "",
                    "cover_order_flow": None,
                    "cover_order_executed_quantity": None,
                    "pledge_status": None,
                    "pnl": None,
                    "underlying": None,
                    "order_segment_code": None,
                }
            )
        return _ok(rows)

    async def _holdings(self, request: web.Request) -> web.StreamResponse:
        data = self._json(request)
        exchange = str(data.get("exchange_code", "")).upper()
        rows = [dict(h) for h in self.holdings if h["exchange_code"] == exchange]
        return _ok(rows) if rows else _err("No Data Found")

    # -- Socket.IO stream --------------------------------------------------------------------

    async def _sio_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        user = (auth or {}).get("user") if isinstance(auth, dict) else None
        token = (auth or {}).get("token") if isinstance(auth, dict) else None
        with self._lock:
            ok = user == self.user_id and token in self.session_keys
            if ok:
                self.socket_connects += 1
                self.subscriptions[sid] = set()
                self.newest_sid = sid
            else:
                self.socket_refusals += 1
        if not ok:
            raise socketio.exceptions.ConnectionRefusedError("authentication failed")
        # Order notifications go to every connection of the user, as ICICI's order feed does.
        await self.sio.enter_room(sid, ORDER_ROOM)
        for sock in list(self.sio.eio.sockets.values()):
            self._mute(sock)

    async def _sio_disconnect(self, sid: str, *args: Any) -> None:
        with self._lock:
            self.subscriptions.pop(sid, None)

    async def _sio_join(self, sid: str, data: Any) -> None:
        tokens = data if isinstance(data, list) else [data]
        with self._lock:
            subs = self.subscriptions.setdefault(sid, set())
            cap = self.max_tokens_per_connection
            for token in tokens:
                if cap is not None and len(subs) >= cap:
                    break
                subs.add(str(token))
        for token in tokens:
            await self.sio.enter_room(sid, str(token))

    async def _sio_leave(self, sid: str, data: Any) -> None:
        tokens = data if isinstance(data, list) else [data]
        with self._lock:
            subs = self.subscriptions.get(sid, set())
            for token in tokens:
                subs.discard(str(token))
        for token in tokens:
            await self.sio.leave_room(sid, str(token))

    def order_notice(self, order: dict[str, Any]) -> list[Any]:
        """The ``order`` event's positional list for ``order`` (breeze_connect.parse_data):
        47 items, message type '4' for cash, '6' for F&O."""
        now = datetime.now(IST)
        quantity = int(order["quantity"])
        pending = int(order["pending_quantity"])
        cancelled = int(order["cancelled_quantity"])
        flow = order["action"][0].upper()
        kind = {"Limit": "L", "Market": "M", "StopLoss": "S"}.get(order["order_type"], "L")
        validity = {"Day": "T", "IoC": "I", "VTC": "V"}.get(order["validity"], "T")
        status = STATUS_LETTERS.get(order["status"], "O")
        head: list[Any] = [
            "1", "ORDER", self.user_id, "", "0", "order", "1",
            now.strftime("%d-%b-%Y"), now.strftime("%H:%M:%S"), "ORDER", "1",
        ]  # fmt: skip
        if order["product_type"] in ("Futures", "Options"):
            body: list[Any] = [
                "6", "8500000000", order["exchange_code"], order["stock_code"],
                order["product_type"][0], (order["right"] or "*")[0], "E",
                order["strike_price"], order["expiry_date"], "", flow, kind, validity,
                order["price"], status, order["order_id"], str(quantity),
                str(order["_filled"]), str(cancelled), "0", order["stoploss"], "N", "1",
                "API", "N", now.strftime("%d-%b-%Y"), "", "0", order["average_price"],
                "N", "N", "N", "N", "N", "N", "",
            ]  # fmt: skip
        else:
            body = [
                "4", "8500000000", order["exchange_code"], order["stock_code"], flow, kind,
                validity, order["price"], "C", status, now.strftime("%d-%b-%Y"),
                now.strftime("%d-%b-%Y"), order["order_id"], str(quantity), str(pending),
                str(order["_filled"]), str(cancelled), "0", "0", order["stoploss"], "N", "0",
                "1", "API", "1", "1", "EQ", "N", "", "", "", order["average_price"], "N", "N",
                "0", "",
            ]  # fmt: skip
        return head + body

    def _notify(self, order: dict[str, Any]) -> None:
        """Emit the order's notification to the user's connections (any thread; lock held)."""
        loop, sio = self._loop, self.sio
        if loop is None or sio is None:
            return
        payload = self.order_notice(order)
        self.order_notices.append(payload)
        loop.call_soon_threadsafe(
            lambda: loop.create_task(sio.emit("order", payload, room=ORDER_ROOM))
        )

    def _scrip_for_token(self, token: str) -> Scrip:
        prefix, _, scrip_token = token.partition("!")
        exchange_prefix = prefix.split(".")[0]
        exchanges = {"4": ("NSE", "NFO"), "1": ("BSE",), "8": ("BFO",), "2": ("BFO",)}
        for s in self.scrips:
            if s.token == scrip_token and s.exchange in exchanges.get(exchange_prefix, ()):
                return s
        raise KeyError(token)

    def tick_payload(self, token: str, epoch: int | None = None) -> list[Any]:
        """The positional list Breeze emits for ``token`` (quote or depth), from current prices."""
        s = self._scrip_for_token(token)
        ltp = self.prices[(s.exchange, s.token)]
        close = Decimal(s.last_price)
        tick = Decimal(s.tick) if Decimal(s.tick) > 0 else Decimal("0.05")
        now = int(time.time()) if epoch is None else epoch
        if ".2!" in token:
            levels = [
                [
                    _num(ltp - tick * (i + 1)),
                    100 * (i + 1),
                    i + 1,
                    "N",
                    _num(ltp + tick * (i + 1)),
                    90 * (i + 1),
                    i + 2,
                    "N",
                ]
                for i in range(5)
            ]
            return [token, now, levels]
        common = [
            token,
            _num(close),  # open
            _num(ltp),  # last
            _num(max(close, ltp)),  # high
            _num(min(close, ltp)),  # low
            _num(((ltp - close) * 100 / close).quantize(Decimal("0.01"))),  # change %
            _num(ltp - tick),  # bPrice
            500,  # bQty
            _num(ltp + tick),  # sPrice
            450,  # sQty
            25,  # ltq
            _num(ltp),  # avgPrice
        ]
        tail = [
            1234567,  # ttq
            40000,  # totalBuyQt
            38000,  # totalSellQ
            "323.61C",  # ttv: text, crore
            "",  # trend
            _num(close * Decimal("0.8")),  # lowerCktLm
            _num(close * Decimal("1.2")),  # upperCktLm
            now,  # ltt, epoch seconds
            _num(close),  # close
        ]
        if s.product == "cash":
            return common + tail
        return [*common, 5000000, 12500, *tail]  # OI, CHNGOI

    def push_ticks(self) -> int:
        """Emit one ``stock`` event per subscribed token; return how many were sent."""

        async def push() -> int:
            if self.silent:
                return 0
            with self._lock:
                tokens = {t for subs in self.subscriptions.values() for t in subs}
            for token in tokens:
                await self.sio.emit("stock", self.tick_payload(token), room=token)
            return len(tokens)

        result: int = self.on_loop(push(), 10)
        return result

    def emit_raw(self, token: str, payload: Any) -> None:
        self.on_loop(self.sio.emit("stock", payload, room=token), 10)

    def drop_sockets(self) -> int:
        """Disconnect every stream client (as a network drop or a server restart would)."""

        async def drop() -> int:
            with self._lock:
                sids = list(self.subscriptions)
            for sid in sids:
                await self.sio.disconnect(sid)
            return len(sids)

        result: int = self.on_loop(drop(), 10)
        return result

    def silence(self, silent: bool) -> None:
        """Stop (or resume) everything sent on the streams, Engine.IO pings included, without
        closing them: what a stalled link or a hung server looks like to the client."""
        self.silent = silent

        async def mute() -> None:
            for sock in list(self.sio.eio.sockets.values()):
                self._mute(sock)

        self.on_loop(mute(), 10)

    def _mute(self, sock: Any) -> None:
        if getattr(sock, "_fake_muted", False):
            return
        send = sock.send

        async def send_unless_silent(pkt: Any) -> None:
            if not self.silent:
                await send(pkt)

        sock.send = send_unless_silent
        sock._fake_muted = True

    def subscribed_tokens(self, newest_only: bool = False) -> set[str]:
        with self._lock:
            if newest_only:
                return set(self.subscriptions.get(self.newest_sid or "", set()))
            return {t for subs in self.subscriptions.values() for t in subs}


def scrip_with_price(s: Scrip, price: str) -> Scrip:
    return replace(s, last_price=price)
