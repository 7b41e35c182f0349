"""A local Kite Connect: REST on 127.0.0.1 that the real kiteconnect SDK talks to in tests.

It answers with Kite's envelopes and HTTP codes (research/brokers.md §1.1, §4.2, §9.2): success
is ``{"status": "success", "data": ...}``; an error is ``{"status": "error", "message",
"data": null, "error_type"}`` with the status code Kite uses, and every response carries a
Content-Type (the SDK raises ``KeyError`` without one). Record shapes follow Zerodha's
kiteconnect-mocks. Behind it sits a small in-memory OMS: orders move OPEN / TRIGGER PENDING /
AMO REQ RECEIVED -> COMPLETE | CANCELLED | REJECTED, with a history per order and trades.

Fault injection (``inject``) is one-shot per call and targets a route: a timeout or a dropped
connection *before* or *after* the order is recorded, a 429, a 500 HTML gateway page, a 503,
or a TokenException. The server runs on its own event loop in a background thread, so the
blocking SDK (called from worker threads by the adapter) and async tests can share it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import secrets
import struct
import threading
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web

from services.calendar import default_calendar
from tests.fakes.loopback import LoopbackServer

IST = ZoneInfo("Asia/Kolkata")
TS = "%Y-%m-%d %H:%M:%S"

FAULTS = frozenset(
    {
        "timeout_before",
        "timeout_after",
        "drop_before",
        "drop_after",
        "429",
        "500_html",
        "503",
        "token",
        "margin",
        "static_ip",
    }
)
VARIETIES = ("regular", "amo", "co", "iceberg", "auction")
ORDER_TYPES = ("MARKET", "LIMIT", "SL", "SL-M")
PRODUCTS = ("CNC", "MIS", "NRML", "MTF", "CO")
VALIDITIES = ("DAY", "IOC", "TTL")
WORKING = ("OPEN", "TRIGGER PENDING", "AMO REQ RECEIVED")
MAX_MODIFICATIONS = 25


@dataclass(frozen=True)
class FakeInstrument:
    exchange_token: int
    segment_code: int  # low byte of the instrument token (Kite's segment)
    tradingsymbol: str
    name: str
    exchange: str
    segment: str
    instrument_type: str
    tick_size: str
    lot_size: int
    last_price: str
    expiry: str = ""
    strike: str = "0.0"

    @property
    def token(self) -> int:
        return self.exchange_token * 256 + self.segment_code

    @property
    def key(self) -> str:
        return f"{self.exchange}:{self.tradingsymbol}"


def _next_thursday(today: date) -> date:
    return today + timedelta(days=(3 - today.weekday()) % 7 or 7)


def default_instruments(today: date | None = None) -> list[FakeInstrument]:
    expiry = _next_thursday(today or datetime.now(IST).date()).isoformat()
    return [
        FakeInstrument(1594, 1, "INFY", "INFOSYS", "NSE", "NSE", "EQ", "0.1", 1, "1573.70"),
        FakeInstrument(
            3045, 1, "SBIN", "STATE BANK OF INDIA", "NSE", "NSE", "EQ", "0.05", 1, "812.40"
        ),
        FakeInstrument(
            1001, 9, "NIFTY 50", "NIFTY 50", "NSE", "INDICES", "EQ", "0.0", 1, "24350.15"
        ),
        FakeInstrument(
            35001, 2, "NIFTYFUT", "NIFTY", "NFO", "NFO-FUT", "FUT", "0.1", 75, "24410.00", expiry
        ),
        FakeInstrument(
            35002,
            2,
            "NIFTY24500CE",
            "NIFTY",
            "NFO",
            "NFO-OPT",
            "CE",
            "0.05",
            75,
            "120.50",
            expiry,
            "24500.0",
        ),
        FakeInstrument(
            500112, 4, "SBIN", "STATE BANK OF INDIA", "BSE", "BSE", "EQ", "0.05", 1, "812.35"
        ),
        FakeInstrument(
            1912, 3, "USDINRFUT", "USDINR", "CDS", "CDS-FUT", "FUT", "0.0025", 1, "84.1250", expiry
        ),
        FakeInstrument(
            228213,
            7,
            "GOLDPETALFUT",
            "GOLDPETAL",
            "MCX",
            "MCX-FUT",
            "FUT",
            "1.0",
            1,
            "7400.0",
            expiry,
        ),
        FakeInstrument(
            7001, 6, "USDINRBCD", "USDINR", "BCD", "BCD-FUT", "FUT", "0.0025", 1, "84.1200", expiry
        ),
    ]


def _envelope(data: Any, status: int = 200) -> web.Response:
    return web.json_response({"status": "success", "data": data}, status=status)


def _error(status: int, error_type: str, message: str) -> web.Response:
    return web.json_response(
        {"status": "error", "message": message, "data": None, "error_type": error_type},
        status=status,
    )


@dataclass(eq=False)
class _Socket:
    ws: web.WebSocketResponse
    request: web.Request
    modes: dict[int, str] = field(default_factory=dict)


_DIVISOR = {3: Decimal(10_000_000), 6: Decimal(10_000), 12: Decimal(10_000)}


def encode_packet(inst: FakeInstrument, mode: str, epoch: int) -> bytes:
    """One KiteTicker packet for ``inst`` at its current price (research/brokers.md §2.1)."""
    div = _DIVISOR.get(inst.segment_code, Decimal(100))

    def i(value: Decimal) -> int:
        return int(value * div)

    ltp = Decimal(inst.last_price)
    tick = Decimal(inst.tick_size) or Decimal("0.05")
    if mode == "ltp":
        return struct.pack(">II", inst.token, i(ltp))
    if inst.segment == "INDICES":
        body = struct.pack(
            ">7I", inst.token, i(ltp), i(ltp + 10), i(ltp - 10), i(ltp - 5), i(ltp - 2), 0
        )
        return body + struct.pack(">I", epoch) if mode == "full" else body
    quote = struct.pack(
        ">11I",
        inst.token,
        i(ltp),
        5,
        i(ltp),
        125_000,
        1500,
        1700,
        i(ltp - 5 * tick),
        i(ltp + 10 * tick),
        i(ltp - 10 * tick),
        i(ltp - tick),
    )
    if mode == "quote":
        return quote
    depth = b"".join(
        struct.pack(">IIH2x", 100 * (n + 1), i(ltp - (n + 1) * tick), n + 1) for n in range(5)
    ) + b"".join(
        struct.pack(">IIH2x", 90 * (n + 1), i(ltp + (n + 1) * tick), n + 1) for n in range(5)
    )
    return quote + struct.pack(">5I", epoch, 0, 0, 0, epoch) + depth


def encode_frame(packets: list[bytes]) -> bytes:
    return struct.pack(">H", len(packets)) + b"".join(
        struct.pack(">H", len(p)) + p for p in packets
    )


class KiteError(Exception):
    def __init__(self, status: int, error_type: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.error_type = error_type
        self.message = message


def _num(value: Decimal) -> float | int:
    """Kite writes numbers as JSON numbers: integers stay integers."""
    return int(value) if value == value.to_integral_value() else float(value)


@dataclass
class Journal:
    requests: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)

    def count(self, method: str, prefix: str) -> int:
        return sum(1 for m, p, _ in self.requests if m == method and p.startswith(prefix))


class FakeKite(LoopbackServer):
    """The fake server and its OMS. Use as a context manager or call start()/stop()."""

    label = "fake Kite"

    def __init__(
        self,
        *,
        api_key: str = "fakeapikey",
        api_secret: str = "fakeapisecret",
        access_token: str | None = "fakeaccesstoken",
        hang_seconds: float = 1.5,
        instruments: list[FakeInstrument] | None = None,
    ) -> None:
        self.api_key = api_key
        self.api_secret = api_secret
        self.access_tokens: set[str] = {access_token} if access_token else set()
        self.hang_seconds = hang_seconds
        self.instruments = {i.key: i for i in instruments or default_instruments()}
        self.redirect_url = "http://127.0.0.1:9/kite/callback"
        self.request_tokens: set[str] = set()
        self.orders: dict[str, dict[str, Any]] = {}
        self.history: dict[str, list[dict[str, Any]]] = {}
        self.trades: list[dict[str, Any]] = []
        self.modifications: dict[str, int] = {}
        self.holdings: list[dict[str, Any]] = [
            {
                "tradingsymbol": "SBIN",
                "exchange": "NSE",
                "instrument_token": 779521,
                "isin": "INE062A01020",
                "product": "CNC",
                "price": 0,
                "quantity": 10,
                "used_quantity": 0,
                "t1_quantity": 2,
                "realised_quantity": 10,
                "authorised_quantity": 0,
                "authorised_date": "2025-01-17 00:00:00",
                "authorisation": {},
                "opening_quantity": 10,
                "short_quantity": 0,
                "collateral_quantity": 0,
                "collateral_type": "",
                "discrepancy": False,
                "average_price": 701.5,
                "last_price": 812.4,
                "close_price": 805.0,
                "pnl": 1109.0,
                "day_change": 7.4,
                "day_change_percentage": 0.919,
            }
        ]
        self.opening_balance = Decimal("250000")
        self.journal = Journal()
        self._faults: deque[tuple[str, str]] = deque()
        self._lock = threading.RLock()
        self._ids = itertools.count(1)
        self._trade_ids = itertools.count(1)
        self.gtts: dict[int, dict[str, Any]] = {}  # trigger id -> Kite's GTT record
        self._gtt_ids = itertools.count(105_100)
        self.sockets: list[_Socket] = []
        self.ws_commands: list[dict[str, Any]] = []
        self.ws_connects = 0
        self.heartbeats = True
        self._sends: set[asyncio.Future[None]] = set()

    # -- lifecycle --------------------------------------------------------------------------

    def build_app(self) -> web.Application:
        app = web.Application(middlewares=[self._middleware])
        self._routes(app)
        return app

    # -- test controls ----------------------------------------------------------------------

    def inject(self, route: str, fault: str) -> None:
        """Make the next request to ``route`` fail with ``fault`` (see ``FAULTS``).

        Routes: ``place``, ``modify``, ``cancel``, ``orders`` (the book), ``any``.
        """
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}")
        with self._lock:
            self._faults.append((route, fault))

    def expire_session(self) -> None:
        with self._lock:
            self.access_tokens.clear()

    def issue_request_token(self) -> str:
        token = secrets.token_hex(8)
        with self._lock:
            self.request_tokens.add(token)
        return token

    def set_price(self, key: str, price: str) -> None:
        """Move ``key``'s last price; an active GTT whose trigger it reaches fires."""
        with self._lock:
            inst = self.instruments[key]
            self.instruments[key] = FakeInstrument(**{**inst.__dict__, "last_price": price})
            self._fire_gtts(key, Decimal(price))

    def fill(self, order_id: str, quantity: int | None = None, price: str | None = None) -> None:
        """Fill a working order (partly if ``quantity`` is less than what is pending)."""
        with self._lock:
            order = self.orders[order_id]
            if order["status"] not in WORKING:
                raise ValueError(f"order {order_id} is {order['status']}")
            inst = self.instruments[f"{order['exchange']}:{order['tradingsymbol']}"]
            qty = quantity or order["pending_quantity"]
            fill_price = (
                Decimal(price)
                if price
                else (Decimal(str(order["price"])) if order["price"] else Decimal(inst.last_price))
            )
            self._fill(order, qty, fill_price)

    def live_orders(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(o) for o in self.orders.values()]

    # -- HTTP plumbing ----------------------------------------------------------------------

    def _routes(self, app: web.Application) -> None:
        r = app.router
        r.add_get("/ws", self._ws)
        r.add_get("/connect/login", self._login_page)
        r.add_post("/session/token", self._session_token)
        r.add_delete("/session/token", self._session_delete)
        r.add_get("/user/profile", self._profile)
        r.add_get("/user/margins", self._margins)
        r.add_get("/user/margins/{segment}", self._margins)
        r.add_get("/orders", self._orders)
        r.add_get("/orders/{order_id}", self._order_history)
        r.add_get("/orders/{order_id}/trades", self._order_trades)
        r.add_post("/orders/{variety}", self._place)
        r.add_put("/orders/{variety}/{order_id}", self._modify)
        r.add_delete("/orders/{variety}/{order_id}", self._cancel)
        r.add_get("/trades", self._trades)
        r.add_get("/portfolio/positions", self._positions)
        r.add_get("/portfolio/holdings", self._holdings)
        r.add_get("/quote", self._quote)
        r.add_get("/quote/ohlc", self._quote)
        r.add_get("/quote/ltp", self._ltp)
        r.add_get("/instruments", self._instruments)
        r.add_get("/instruments/{exchange}", self._instruments)
        r.add_get("/instruments/historical/{token}/{interval}", self._historical)
        r.add_get("/gtt/triggers", self._gtts)
        r.add_post("/gtt/triggers", self._gtt_place)
        r.add_get("/gtt/triggers/{trigger_id}", self._gtt_info)
        r.add_put("/gtt/triggers/{trigger_id}", self._gtt_modify)
        r.add_delete("/gtt/triggers/{trigger_id}", self._gtt_delete)

    @staticmethod
    def _route_of(request: web.Request) -> str:
        path, method = request.path, request.method
        if path.startswith("/orders/") and method == "POST":
            return "place"
        if path.startswith("/orders/") and method == "PUT":
            return "modify"
        if path.startswith("/orders/") and method == "DELETE":
            return "cancel"
        if path == "/orders" and method == "GET":
            return "orders"
        return "other"

    def _take_fault(self, route: str) -> str | None:
        with self._lock:
            for i, (target, fault) in enumerate(self._faults):
                if target in (route, "any"):
                    del self._faults[i]
                    return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Any) -> web.StreamResponse:
        self.journal.requests.append((request.method, request.path, dict(request.headers)))
        public = request.path in ("/connect/login", "/session/token", "/ws")
        if not public:
            auth = request.headers.get("Authorization", "")
            with self._lock:
                valid = {f"token {self.api_key}:{t}" for t in self.access_tokens}
            if auth not in valid:
                return _error(403, "TokenException", "Incorrect `api_key` or `access_token`.")
        fault = self._take_fault(self._route_of(request))
        if fault == "429":
            return _error(429, "NetworkException", "Too many requests")
        if fault == "500_html":
            return web.Response(
                status=500,
                text="<html><body><h1>500 Internal Server Error</h1></body></html>",
                content_type="text/html",
            )
        if fault == "503":
            return _error(503, "NetworkException", "Gateway timed out. Please try again.")
        if fault == "token":
            return _error(403, "TokenException", "Token is invalid or has expired.")
        if fault == "margin":
            # Kite's RMS refusal (an OMS error type the SDK does not define).
            return _error(
                400,
                "MarginException",
                "Insufficient funds. Required margin is 1573.70 but available margin is 0.00.",
            )
        if fault == "static_ip":
            # SEBI static-IP check; Kite's exact wording is unverified (research/wave2.md §5).
            return _error(
                403,
                "PermissionException",
                "Orders are allowed only from the static IP registered for this app "
                "(request came from 203.0.113.7).",
            )
        if fault == "timeout_before":
            await asyncio.sleep(self.hang_seconds)
            return _error(504, "NetworkException", "abandoned")
        if fault == "drop_before":
            return self._drop(request)
        response = await self._handle(request, handler)
        if fault == "timeout_after":
            await asyncio.sleep(self.hang_seconds)
        if fault == "drop_after":
            return self._drop(request)
        return response

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        """Cut the TCP connection: the client sees a reset, not an HTTP answer."""
        transport = request.transport
        if transport is not None:
            transport.abort()  # type: ignore[attr-defined]
        return web.Response(status=500, text="dropped", content_type="text/plain")

    async def _handle(self, request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            result: web.StreamResponse = await handler(request)
            return result
        except KiteError as exc:
            return _error(exc.status, exc.error_type, exc.message)

    # -- ticker WebSocket ---------------------------------------------------------------------

    async def _ws(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            ok = request.query.get("api_key") == self.api_key and (
                request.query.get("access_token") in self.access_tokens
            )
        if not ok:
            return web.Response(status=403, text="Invalid access token", content_type="text/plain")
        ws = web.WebSocketResponse(autoping=True)
        await ws.prepare(request)
        sock = _Socket(ws, request)
        self.sockets.append(sock)
        self.ws_connects += 1
        beat = asyncio.ensure_future(self._heartbeat(sock))
        try:
            async for msg in ws:
                if msg.type.name != "TEXT":
                    continue
                command = json.loads(msg.data)
                self.ws_commands.append(command)
                action, value = command.get("a"), command.get("v")
                if action == "subscribe":
                    for token in value:
                        sock.modes[int(token)] = "quote"
                elif action == "unsubscribe":
                    for token in value:
                        sock.modes.pop(int(token), None)
                elif action == "mode":
                    mode, tokens = value
                    for token in tokens:
                        sock.modes[int(token)] = mode
        finally:
            beat.cancel()
            if sock in self.sockets:
                self.sockets.remove(sock)
        return ws

    async def _heartbeat(self, sock: _Socket) -> None:
        while not sock.ws.closed:
            await asyncio.sleep(1.0)
            if self.heartbeats and not sock.ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await sock.ws.send_bytes(b"\x00")

    def _on_loop(self, coro_fn: Any) -> Any:
        loop = self._loop
        if loop is None:
            raise RuntimeError("fake Kite is not running")
        return asyncio.run_coroutine_threadsafe(coro_fn(), loop).result(5)

    def _broadcast_text(self, text: str) -> None:
        loop = self._loop
        if loop is None:
            return

        def send() -> None:
            for sock in list(self.sockets):
                if not sock.ws.closed:
                    task = asyncio.ensure_future(sock.ws.send_str(text))
                    self._sends.add(task)
                    task.add_done_callback(self._sends.discard)

        loop.call_soon_threadsafe(send)

    def push_ticks(self) -> int:
        """Send every socket one frame with a packet per subscribed token in its mode."""
        epoch = int(datetime.now(IST).timestamp())
        by_token = {i.token: i for i in self.instruments.values()}

        async def push() -> int:
            sent = 0
            for sock in list(self.sockets):
                packets = [
                    encode_packet(by_token[t], mode, epoch)
                    for t, mode in sock.modes.items()
                    if t in by_token
                ]
                if packets and not sock.ws.closed:
                    await sock.ws.send_bytes(encode_frame(packets))
                    sent += len(packets)
            return sent

        result: int = self._on_loop(push)
        return result

    def drop_sockets(self) -> int:
        """Cut every ticker connection without a close frame, as a network failure would."""

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

    def subscriptions(self) -> list[dict[int, str]]:
        async def read() -> list[dict[int, str]]:
            return [dict(s.modes) for s in self.sockets if not s.ws.closed]

        result: list[dict[int, str]] = self._on_loop(read)
        return result

    # -- session ----------------------------------------------------------------------------

    async def _login_page(self, request: web.Request) -> web.StreamResponse:
        if request.query.get("api_key") != self.api_key:
            return web.Response(status=400, text="Invalid api_key", content_type="text/plain")
        token = self.issue_request_token()
        # Kite appends the login URL's ``redirect_params`` (a URL-encoded query string) to
        # the redirect, which is how a client carries its own state through the login.
        extra = request.query.get("redirect_params", "")
        raise web.HTTPFound(
            f"{self.redirect_url}?request_token={token}&action=login&status=success"
            + (f"&{extra}" if extra else "")
        )

    async def _session_token(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        api_key, request_token = str(form.get("api_key", "")), str(form.get("request_token", ""))
        expected = hashlib.sha256((api_key + request_token + self.api_secret).encode()).hexdigest()
        with self._lock:
            known = request_token in self.request_tokens
            if api_key != self.api_key or not known or form.get("checksum") != expected:
                return _error(403, "TokenException", "Token is invalid or has expired.")
            self.request_tokens.discard(request_token)
            access = secrets.token_hex(16)
            self.access_tokens.add(access)
        return _envelope(
            {
                "user_type": "individual",
                "email": "trader@example.com",
                "user_name": "Fake Trader",
                "user_shortname": "Fake",
                "broker": "ZERODHA",
                "exchanges": ["NSE", "NFO", "BSE", "BFO", "CDS", "MCX"],
                "products": ["CNC", "NRML", "MIS"],
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
                "avatar_url": None,
                "user_id": "AB1234",
                "api_key": self.api_key,
                "access_token": access,
                "public_token": secrets.token_hex(8),
                "refresh_token": "",
                "enctoken": "",
                "login_time": datetime.now(IST).strftime(TS),
                "meta": {"demat_consent": "consent"},
            }
        )

    async def _session_delete(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            self.access_tokens.discard(request.query.get("access_token", ""))
        return _envelope(True)

    async def _profile(self, request: web.Request) -> web.StreamResponse:
        return _envelope(
            {
                "user_id": "AB1234",
                "user_type": "individual",
                "email": "trader@example.com",
                "user_name": "Fake Trader",
                "user_shortname": "Fake",
                "broker": "ZERODHA",
                "exchanges": ["NSE", "NFO", "BSE", "BFO", "CDS", "MCX"],
                "products": ["CNC", "NRML", "MIS"],
                "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
                "avatar_url": None,
                "meta": {"demat_consent": "consent"},
            }
        )

    # -- funds and portfolio ----------------------------------------------------------------

    def _segment_margins(self, segment: str) -> dict[str, Any]:
        with self._lock:
            debits = sum(
                (
                    Decimal(str(t["average_price"])) * t["quantity"]
                    for t in self.trades
                    if t["transaction_type"] == "BUY"
                    and (t["exchange"] == "MCX") == (segment == "commodity")
                ),
                Decimal(0),
            )
        opening = self.opening_balance if segment == "equity" else Decimal(0)
        net = opening - debits
        return {
            "enabled": True,
            "net": _num(net),
            "available": {
                "adhoc_margin": 0,
                "cash": _num(opening),
                "opening_balance": _num(opening),
                "live_balance": _num(net),
                "collateral": 0,
                "intraday_payin": 0,
            },
            "utilised": {
                "debits": _num(debits),
                "exposure": 0,
                "m2m_realised": 0,
                "m2m_unrealised": 0,
                "option_premium": 0,
                "payout": 0,
                "span": 0,
                "holding_sales": 0,
                "turnover": 0,
                "liquid_collateral": 0,
                "stock_collateral": 0,
                "delivery": 0,
            },
        }

    async def _margins(self, request: web.Request) -> web.StreamResponse:
        segment = request.match_info.get("segment")
        if segment is not None:
            if segment not in ("equity", "commodity"):
                raise KiteError(400, "InputException", "Invalid segment.")
            return _envelope(self._segment_margins(segment))
        return _envelope(
            {
                "equity": self._segment_margins("equity"),
                "commodity": self._segment_margins("commodity"),
            }
        )

    async def _positions(self, request: web.Request) -> web.StreamResponse:
        book: dict[tuple[str, str, str], dict[str, Any]] = {}
        with self._lock:
            trades = list(self.trades)
        for t in trades:
            k = (t["exchange"], t["tradingsymbol"], t["product"])
            p = book.setdefault(
                k,
                {
                    "buy_q": 0,
                    "sell_q": 0,
                    "buy_v": Decimal(0),
                    "sell_v": Decimal(0),
                    "token": t["instrument_token"],
                },
            )
            value = Decimal(str(t["average_price"])) * t["quantity"]
            if t["transaction_type"] == "BUY":
                p["buy_q"] += t["quantity"]
                p["buy_v"] += value
            else:
                p["sell_q"] += t["quantity"]
                p["sell_v"] += value
        net = []
        for (exchange, symbol, product), p in book.items():
            qty = p["buy_q"] - p["sell_q"]
            ltp = Decimal(self.instruments[f"{exchange}:{symbol}"].last_price)
            buy_avg = p["buy_v"] / p["buy_q"] if p["buy_q"] else Decimal(0)
            sell_avg = p["sell_v"] / p["sell_q"] if p["sell_q"] else Decimal(0)
            avg = buy_avg if qty > 0 else sell_avg if qty < 0 else Decimal(0)
            closed = min(p["buy_q"], p["sell_q"])
            realised = (sell_avg - buy_avg) * closed if closed else Decimal(0)
            unrealised = (ltp - avg) * qty
            net.append(
                {
                    "tradingsymbol": symbol,
                    "exchange": exchange,
                    "instrument_token": p["token"],
                    "product": product,
                    "quantity": qty,
                    "overnight_quantity": 0,
                    "multiplier": 1,
                    "average_price": _num(avg),
                    "close_price": 0,
                    "last_price": _num(ltp),
                    "value": _num(p["sell_v"] - p["buy_v"]),
                    "pnl": _num(realised + unrealised),
                    "m2m": _num(realised + unrealised),
                    "unrealised": _num(unrealised),
                    "realised": _num(realised),
                    "buy_quantity": p["buy_q"],
                    "buy_price": _num(buy_avg),
                    "buy_value": _num(p["buy_v"]),
                    "buy_m2m": _num(p["buy_v"]),
                    "sell_quantity": p["sell_q"],
                    "sell_price": _num(sell_avg),
                    "sell_value": _num(p["sell_v"]),
                    "sell_m2m": _num(p["sell_v"]),
                    "day_buy_quantity": p["buy_q"],
                    "day_buy_price": _num(buy_avg),
                    "day_buy_value": _num(p["buy_v"]),
                    "day_sell_quantity": p["sell_q"],
                    "day_sell_price": _num(sell_avg),
                    "day_sell_value": _num(p["sell_v"]),
                }
            )
        return _envelope({"net": net, "day": net})

    async def _holdings(self, request: web.Request) -> web.StreamResponse:
        return _envelope(self.holdings)

    # -- orders -----------------------------------------------------------------------------

    def _new_order_id(self) -> str:
        return f"{datetime.now(IST):%y%m%d}{next(self._ids):09d}"

    def _snapshot(self, order: dict[str, Any], status: str | None = None) -> None:
        if status is not None:
            order["status"] = status
        now = datetime.now(IST).strftime(TS)
        order["exchange_update_timestamp"] = now
        self.history.setdefault(order["order_id"], []).append(dict(order))
        self._broadcast_text(json.dumps({"type": "order", "data": dict(order)}))

    def _fill(self, order: dict[str, Any], qty: int, price: Decimal) -> None:
        qty = min(qty, order["pending_quantity"])
        filled_before = order["filled_quantity"]
        avg_before = Decimal(str(order["average_price"]))
        filled = filled_before + qty
        order["average_price"] = _num((avg_before * filled_before + price * qty) / filled)
        order["filled_quantity"] = filled
        order["pending_quantity"] = order["quantity"] - filled
        now = datetime.now(IST).strftime(TS)
        order["exchange_timestamp"] = order["exchange_timestamp"] or now
        self.trades.append(
            {
                "trade_id": f"{next(self._trade_ids):08d}",
                "order_id": order["order_id"],
                "exchange": order["exchange"],
                "tradingsymbol": order["tradingsymbol"],
                "instrument_token": order["instrument_token"],
                "product": order["product"],
                "average_price": _num(price),
                "quantity": qty,
                "exchange_order_id": order["exchange_order_id"],
                "transaction_type": order["transaction_type"],
                "fill_timestamp": now,
                "order_timestamp": now[11:],
                "exchange_timestamp": now,
            }
        )
        self._snapshot(order, "COMPLETE" if order["pending_quantity"] == 0 else "OPEN")

    @staticmethod
    def _required(form: Any, name: str) -> str:
        value = form.get(name)
        if value in (None, ""):
            raise KiteError(400, "InputException", f"Missing `{name}`.")
        return str(value)

    @staticmethod
    def _decimal(form: Any, name: str) -> Decimal:
        try:
            return Decimal(str(form.get(name) or "0"))
        except ArithmeticError:
            raise KiteError(400, "InputException", f"Invalid `{name}`.") from None

    async def _place(self, request: web.Request) -> web.StreamResponse:
        variety = request.match_info["variety"]
        form = await request.post()
        return _envelope({"order_id": self._place_form(variety, form)})

    def _place_form(self, variety: str, form: Any) -> str:
        """Validate and record one order (``form``: the POST fields); its order id."""
        if variety not in VARIETIES:
            raise KiteError(400, "InputException", "Invalid `variety`.")
        exchange = self._required(form, "exchange")
        symbol = self._required(form, "tradingsymbol")
        side = self._required(form, "transaction_type")
        order_type = self._required(form, "order_type")
        product = self._required(form, "product")
        validity = str(form.get("validity") or "DAY")
        if side not in ("BUY", "SELL"):
            raise KiteError(400, "InputException", "Invalid `transaction_type`.")
        if order_type not in ORDER_TYPES:
            raise KiteError(400, "InputException", "Invalid `order_type`.")
        if product not in PRODUCTS:
            raise KiteError(400, "InputException", "Invalid `product`.")
        if validity not in VALIDITIES:
            raise KiteError(400, "InputException", "Invalid `validity`.")
        try:
            quantity = int(self._required(form, "quantity"))
        except ValueError:
            raise KiteError(400, "InputException", "Invalid `quantity`.") from None
        if quantity <= 0:
            raise KiteError(400, "InputException", "Quantity should be greater than 0.")
        price = self._decimal(form, "price")
        trigger = self._decimal(form, "trigger_price")
        if order_type in ("LIMIT", "SL") and price <= 0:
            raise KiteError(400, "InputException", "Price should be greater than 0.")
        if order_type in ("SL", "SL-M") and trigger <= 0:
            raise KiteError(400, "InputException", "Trigger price should be greater than 0.")
        protection = str(form.get("market_protection") or "0")
        if order_type in ("MARKET", "SL-M") and protection in ("", "0"):
            raise KiteError(
                400,
                "InputException",
                "Market orders without market protection are not allowed via API. "
                "Please set market protection or use a Limit order.",
            )
        tag = form.get("tag")
        if tag is not None and len(str(tag)) > 20:
            raise KiteError(400, "InputException", "Tag length should not exceed 20 characters.")
        inst = self.instruments.get(f"{exchange}:{symbol}")
        if inst is None:
            raise KiteError(
                400,
                "InputException",
                "The instrument you are placing an order for has either expired or does not exist.",
            )
        if validity == "TTL" and not form.get("validity_ttl"):
            raise KiteError(400, "InputException", "Missing `validity_ttl`.")
        now = datetime.now(IST).strftime(TS)
        with self._lock:
            order_id = self._new_order_id()
            order: dict[str, Any] = {
                "placed_by": "AB1234",
                "order_id": order_id,
                "exchange_order_id": None,
                "parent_order_id": None,
                "status": "PUT ORDER REQ RECEIVED",
                "status_message": None,
                "status_message_raw": None,
                "order_timestamp": now,
                "exchange_update_timestamp": None,
                "exchange_timestamp": None,
                "variety": variety,
                "modified": False,
                "exchange": exchange,
                "tradingsymbol": symbol,
                "instrument_token": inst.token,
                "order_type": order_type,
                "transaction_type": side,
                "validity": validity,
                "product": product,
                "quantity": quantity,
                "disclosed_quantity": 0,
                "price": _num(price),
                "trigger_price": _num(trigger),
                "average_price": 0,
                "filled_quantity": 0,
                "pending_quantity": quantity,
                "cancelled_quantity": 0,
                "market_protection": _num(Decimal(protection)),
                "meta": {},
                "tag": str(tag) if tag else None,
                "tags": [str(tag)] if tag else None,
                "algo_id": form.get("algo_id"),
                "guid": secrets.token_hex(6),
            }
            self.orders[order_id] = order
            self._snapshot(order)
            self._snapshot(order, "VALIDATION PENDING")
            self._accept(order, inst, price, trigger)
        return order_id

    def _accept(
        self, order: dict[str, Any], inst: FakeInstrument, price: Decimal, trigger: Decimal
    ) -> None:
        tick = Decimal(inst.tick_size)
        reason = None
        if inst.segment == "INDICES":
            reason = "Indices are not tradable."
        elif order["quantity"] % inst.lot_size:
            reason = f"Quantity should be a multiple of lot size {inst.lot_size}."
        elif (price and price % tick) or (trigger and trigger % tick):
            reason = (
                f"Tick size for this script is {inst.tick_size}. Kindly enter price in "
                "the multiple of tick size for this script"
            )
        if reason is not None:
            order["status_message"] = order["status_message_raw"] = reason
            self._snapshot(order, "REJECTED")
            return
        order["exchange_order_id"] = f"{1100000000000000 + int(order['order_id'][-9:])}"
        if order["variety"] == "amo":
            self._snapshot(order, "AMO REQ RECEIVED")
            return
        self._snapshot(order, "OPEN PENDING")
        if order["order_type"] in ("SL", "SL-M"):
            self._snapshot(order, "TRIGGER PENDING")
            return
        self._snapshot(order, "OPEN")
        if order["order_type"] == "MARKET":
            self._fill(order, order["quantity"], Decimal(inst.last_price))
        elif order["validity"] == "IOC":
            order["cancelled_quantity"] = order["pending_quantity"]
            self._snapshot(order, "CANCELLED")

    def _working(self, order_id: str, verb: str) -> dict[str, Any]:
        order = self.orders.get(order_id)
        if order is None:
            raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
        if order["status"] not in WORKING:
            raise KiteError(
                400,
                "InputException",
                f"Order cannot be {verb} as it is in {order['status'].lower()} state.",
            )
        return order

    async def _modify(self, request: web.Request) -> web.StreamResponse:
        order_id = request.match_info["order_id"]
        form = await request.post()
        with self._lock:
            order = self._working(order_id, "modified")
            if order["variety"] != request.match_info["variety"]:
                raise KiteError(400, "InputException", "Invalid `variety`.")
            count = self.modifications.get(order_id, 0)
            if count >= MAX_MODIFICATIONS:
                raise KiteError(
                    400, "OrderException", "Maximum allowed order modifications exceeded."
                )
            new_type = str(form.get("order_type") or order["order_type"])
            if new_type not in ORDER_TYPES:
                raise KiteError(400, "InputException", "Invalid `order_type`.")
            if new_type in ("MARKET", "SL-M") and str(form.get("market_protection") or "0") in (
                "",
                "0",
            ):
                raise KiteError(
                    400,
                    "InputException",
                    "Market orders without market protection are not allowed via API.",
                )
            if form.get("quantity"):
                qty = int(str(form["quantity"]))
                if qty < order["filled_quantity"] or qty <= 0:
                    raise KiteError(400, "InputException", "Invalid `quantity`.")
                order["quantity"] = qty
                order["pending_quantity"] = qty - order["filled_quantity"]
            if form.get("price"):
                order["price"] = _num(self._decimal(form, "price"))
            if form.get("trigger_price"):
                order["trigger_price"] = _num(self._decimal(form, "trigger_price"))
            order["order_type"] = new_type
            order["modified"] = True
            self.modifications[order_id] = count + 1
            status = order["status"]
            self._snapshot(order, "MODIFY VALIDATION PENDING")
            self._snapshot(order, "MODIFY PENDING")
            self._snapshot(order, "MODIFIED")
            if status == "TRIGGER PENDING" and new_type in ("MARKET", "LIMIT"):
                status = "OPEN"
            self._snapshot(order, status)
            if new_type == "MARKET" and status == "OPEN":
                inst = self.instruments[f"{order['exchange']}:{order['tradingsymbol']}"]
                self._fill(order, order["pending_quantity"], Decimal(inst.last_price))
        return _envelope({"order_id": order_id})

    async def _cancel(self, request: web.Request) -> web.StreamResponse:
        order_id = request.match_info["order_id"]
        with self._lock:
            order = self._working(order_id, "cancelled")
            if order["variety"] != request.match_info["variety"]:
                raise KiteError(400, "InputException", "Invalid `variety`.")
            order["cancelled_quantity"] = order["pending_quantity"]
            self._snapshot(order, "CANCEL PENDING")
            self._snapshot(order, "CANCELLED AMO" if order["variety"] == "amo" else "CANCELLED")
        return _envelope({"order_id": order_id})

    async def _orders(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _envelope([dict(o) for o in self.orders.values()])

    async def _order_history(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            history = self.history.get(request.match_info["order_id"])
            if history is None:
                raise KiteError(400, "InputException", "Couldn't find that `order_id`.")
            return _envelope([dict(h) for h in history])

    async def _order_trades(self, request: web.Request) -> web.StreamResponse:
        order_id = request.match_info["order_id"]
        with self._lock:
            return _envelope([t for t in self.trades if t["order_id"] == order_id])

    async def _trades(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _envelope(list(self.trades))

    # -- GTT (/gtt/triggers) ----------------------------------------------------------------
    # Record shapes as kiteconnect-mocks' gtt_get_orders.json: ``condition`` with the trigger
    # values and the last price at placement, one ``orders`` entry per trigger, each with a
    # ``result`` once it fired. Kite keeps deleted and fired GTTs in the list with their status.

    def _gtt_record(self, form: Any, trigger_id: int, created: str) -> dict[str, Any]:
        kind = self._required(form, "type")
        if kind not in ("single", "two-leg"):
            raise KiteError(400, "InputException", "Invalid `type`.")
        try:
            condition = json.loads(self._required(form, "condition"))
            orders = json.loads(self._required(form, "orders"))
        except ValueError:
            raise KiteError(400, "InputException", "Invalid `condition` or `orders`.") from None
        inst = self.instruments.get(f"{condition.get('exchange')}:{condition.get('tradingsymbol')}")
        if inst is None:
            raise KiteError(
                400, "InputException", "The instrument you are placing a GTT for does not exist."
            )
        triggers = [Decimal(str(v)) for v in condition.get("trigger_values") or []]
        last = Decimal(str(condition.get("last_price") or "0"))
        if len(triggers) != (1 if kind == "single" else 2) or len(orders) != len(triggers):
            raise KiteError(400, "InputException", "Invalid `trigger_values` for the `type`.")
        if kind == "two-leg" and not triggers[0] < last < triggers[1]:
            raise KiteError(
                400, "InputException",
                "The lower trigger must be below and the upper trigger above the last price.",
            )  # fmt: skip
        if kind == "single" and triggers[0] == last:
            raise KiteError(400, "InputException", "Trigger cannot be the same as last price.")
        for order in orders:
            if order.get("order_type") != "LIMIT" or order.get("product") not in PRODUCTS:
                raise KiteError(400, "InputException", "Invalid `order_type` or `product`.")
            if int(order.get("quantity") or 0) <= 0 or Decimal(str(order.get("price") or 0)) <= 0:
                raise KiteError(400, "InputException", "Invalid `quantity` or `price`.")
        return {
            "id": trigger_id,
            "user_id": "AB1234",
            "parent_trigger": None,
            "type": kind,
            "created_at": created,
            "updated_at": datetime.now(IST).strftime(TS),
            "expires_at": (datetime.now(IST) + timedelta(days=365)).strftime(TS),
            "status": "active",
            "condition": {
                "exchange": inst.exchange,
                "last_price": _num(last),
                "tradingsymbol": inst.tradingsymbol,
                "trigger_values": [_num(t) for t in triggers],
                "instrument_token": inst.token,
            },
            "orders": [
                {
                    "exchange": inst.exchange,
                    "tradingsymbol": inst.tradingsymbol,
                    "product": o["product"],
                    "order_type": o["order_type"],
                    "transaction_type": o["transaction_type"],
                    "quantity": int(o["quantity"]),
                    "price": _num(Decimal(str(o["price"]))),
                    "result": None,
                }
                for o in orders
            ],
            "meta": {},
        }

    async def _gtt_place(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        with self._lock:
            trigger_id = next(self._gtt_ids)
            self.gtts[trigger_id] = self._gtt_record(
                form, trigger_id, datetime.now(IST).strftime(TS)
            )
        return _envelope({"trigger_id": trigger_id})

    def _gtt_of(self, request: web.Request, *, active: bool = False) -> dict[str, Any]:
        try:
            record = self.gtts.get(int(request.match_info["trigger_id"]))
        except ValueError:
            record = None
        if record is None:
            raise KiteError(404, "InputException", "Trigger not found.")
        if active and record["status"] != "active":
            raise KiteError(400, "InputException", f"Trigger is {record['status']}, not active.")
        return record

    async def _gtts(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _envelope([json.loads(json.dumps(g)) for g in self.gtts.values()])

    async def _gtt_info(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            return _envelope(json.loads(json.dumps(self._gtt_of(request))))

    async def _gtt_modify(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        with self._lock:
            old = self._gtt_of(request, active=True)
            self.gtts[old["id"]] = self._gtt_record(form, old["id"], old["created_at"])
            return _envelope({"trigger_id": old["id"]})

    async def _gtt_delete(self, request: web.Request) -> web.StreamResponse:
        with self._lock:
            record = self._gtt_of(request, active=True)
            record["status"] = "deleted"
            record["updated_at"] = datetime.now(IST).strftime(TS)
            return _envelope({"trigger_id": record["id"]})

    def _fire_gtts(self, key: str, price: Decimal) -> None:
        """Fire each active GTT on ``key`` whose trigger ``price`` reached (lock held)."""
        for record in self.gtts.values():
            cond = record["condition"]
            if record["status"] != "active" or f"{cond['exchange']}:{cond['tradingsymbol']}" != key:
                continue
            last = Decimal(str(cond["last_price"]))
            triggers = [Decimal(str(v)) for v in cond["trigger_values"]]
            for n, trigger in enumerate(triggers):
                rising = trigger > last if record["type"] == "single" else n == 1
                if (price >= trigger) if rising else (price <= trigger):
                    self._gtt_order(record, n, trigger)
                    break

    def _gtt_order(self, record: dict[str, Any], leg: int, trigger: Decimal) -> None:
        order = record["orders"][leg]
        now = datetime.now(IST).strftime(TS)
        form = {**order, "validity": "DAY", "tag": None}
        try:
            order_id = self._place_form("regular", {k: v for k, v in form.items() if v is not None})
            placed = self.orders[order_id]
            outcome = {"status": "success", "order_id": order_id, "rejection_reason": ""}
            if placed["status"] == "REJECTED":
                outcome["rejection_reason"] = placed["status_message"] or ""
        except KiteError as exc:
            outcome = {"status": "failed", "order_id": "", "rejection_reason": exc.message}
        order["result"] = {
            "account_id": "AB1234",
            "exchange": order["exchange"],
            "tradingsymbol": order["tradingsymbol"],
            "validity": "DAY",
            "product": order["product"],
            "order_type": order["order_type"],
            "transaction_type": order["transaction_type"],
            "quantity": order["quantity"],
            "price": order["price"],
            "meta": json.dumps({"app_id": 12617, "gtt": record["id"]}),
            "timestamp": now,
            "triggered_at": _num(trigger),
            "order_result": outcome,
        }
        record["status"] = "triggered"
        record["updated_at"] = now

    # -- market data ------------------------------------------------------------------------

    def _lookup(self, key: str) -> FakeInstrument | None:
        return self.instruments.get(key)

    async def _quote(self, request: web.Request) -> web.StreamResponse:
        data: dict[str, Any] = {}
        now = datetime.now(IST).strftime(TS)
        for key in request.query.getall("i", []):
            inst = self._lookup(key)
            if inst is None:
                continue
            ltp = Decimal(inst.last_price)
            tick = Decimal(inst.tick_size) or Decimal("0.05")
            data[key] = {
                "instrument_token": inst.token,
                "timestamp": now,
                "last_trade_time": now,
                "last_price": _num(ltp),
                "last_quantity": 5,
                "buy_quantity": 1500,
                "sell_quantity": 1700,
                "volume": 125000,
                "average_price": _num(ltp),
                "oi": 0,
                "oi_day_high": 0,
                "oi_day_low": 0,
                "net_change": 0,
                "lower_circuit_limit": _num(ltp * Decimal("0.9")),
                "upper_circuit_limit": _num(ltp * Decimal("1.1")),
                "ohlc": {
                    "open": _num(ltp),
                    "high": _num(ltp + 10 * tick),
                    "low": _num(ltp - 10 * tick),
                    "close": _num(ltp - tick),
                },
                "depth": {
                    "buy": [
                        {
                            "price": _num(ltp - (i + 1) * tick),
                            "quantity": 100 * (i + 1),
                            "orders": i + 1,
                        }
                        for i in range(5)
                    ],
                    "sell": [
                        {
                            "price": _num(ltp + (i + 1) * tick),
                            "quantity": 90 * (i + 1),
                            "orders": i + 1,
                        }
                        for i in range(5)
                    ],
                },
            }
        return _envelope(data)

    async def _ltp(self, request: web.Request) -> web.StreamResponse:
        data = {}
        for key in request.query.getall("i", []):
            inst = self._lookup(key)
            if inst is not None:
                data[key] = {
                    "instrument_token": inst.token,
                    "last_price": _num(Decimal(inst.last_price)),
                }
        return _envelope(data)

    def instruments_csv(self, exchange: str | None = None) -> str:
        lines = [
            "instrument_token,exchange_token,tradingsymbol,name,last_price,expiry,strike,"
            "tick_size,lot_size,instrument_type,segment,exchange"
        ]
        for i in self.instruments.values():
            if exchange and i.exchange != exchange:
                continue
            name = f'"{i.name}"' if "," in i.name else i.name
            lines.append(
                f"{i.token},{i.exchange_token},{i.tradingsymbol},{name},{i.last_price},"
                f"{i.expiry},{i.strike},{i.tick_size},{i.lot_size},{i.instrument_type},"
                f"{i.segment},{i.exchange}"
            )
        return "\n".join(lines) + "\n"

    async def _instruments(self, request: web.Request) -> web.StreamResponse:
        return web.Response(
            text=self.instruments_csv(request.match_info.get("exchange")), content_type="text/csv"
        )

    async def _historical(self, request: web.Request) -> web.StreamResponse:
        interval = request.match_info["interval"]
        minutes = {"minute": 1, "5minute": 5, "15minute": 15, "30minute": 30, "60minute": 60,
                   "day": 1440}
        if interval not in minutes:
            raise KiteError(400, "InputException", "Invalid interval.")
        try:
            token = int(request.match_info["token"])
            start = datetime.strptime(request.query["from"], TS)
            end = datetime.strptime(request.query["to"], TS)
        except (KeyError, ValueError):
            raise KiteError(400, "InputException", "Invalid `from` or `to` date.") from None
        step = timedelta(minutes=minutes[interval])
        candles = []
        t = start
        price = Decimal(1000 + token % 1000)
        n = 0
        calendar = default_calendar()
        while t <= end and n < 2000:
            # Like Kite: candles only inside the day's trading session (day candles at
            # midnight of each trading day), nothing on weekends and holidays.
            session = calendar.session(t.date())
            if session is None or (step < timedelta(days=1)
                                   and not session.open <= t.time() < session.close):
                t += step
                continue
            o = price
            c = o + Decimal((n * 37) % 11 - 5) / 4
            candles.append(
                [
                    t.strftime("%Y-%m-%dT%H:%M:%S+0530"),
                    _num(o),
                    _num(max(o, c) + 1),
                    _num(min(o, c) - 1),
                    _num(c),
                    1000 + (n * 97) % 500,
                ]
            )
            price = c
            t += step
            n += 1
        return _envelope({"candles": candles})
