"""``AngelExecution``: orders and the account on Angel One, through smartapi-python.

The SDK is a blocking ``requests`` client: every call runs in a worker thread, and the SDK
itself is imported (and its ``SmartConnect`` built) in a worker thread on first use, never on
the event loop or the UI thread (see ``sdk.py`` for what that import would otherwise do).

Placement is the one call that must never be repeated blindly. Each order carries our own
``ordertag`` (at most 19 characters). When a placement times out, loses its connection or
meets a gateway page, we do not know whether Angel recorded it, so we look the tag up in the
order book (paced to Angel's one read a second) and place again, once, only if it is not
there. ``placeOrderFullResponse`` is used instead of ``placeOrder``, which returns ``None``
on failure and hides Angel's error code.

Place, modify and cancel share one throttle (9/s, 500/min, 1,000/h: Angel counts them
together per client code).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.angelone import mapping
from services.brokers.angelone.config import (
    BOOK_INTERVAL,
    BROKER_ID,
    LIMITS,
    AngelEndpoints,
)
from services.brokers.angelone.errors import map_exception, raise_for_body
from services.brokers.angelone.instruments import AngelInstruments
from services.brokers.angelone.sdk import load_sdk
from services.brokers.errors import (
    InstrumentUnknown,
    OutcomeUnknown,
    SessionExpired,
    outcome_unknown,
)
from services.brokers.order_tags import TagLedger, find_after_failure
from services.brokers.ports import InstrumentMaster, SessionToken
from services.bus import FILLS, ORDERS, POSITIONS, EventBus
from services.clock import Clock, SystemClock
from services.domain import (
    Fill,
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
)

log = logging.getLogger(__name__)

T = TypeVar("T")


class SendThrottle(Protocol):
    async def acquire(self) -> float: ...


@dataclass(frozen=True, slots=True)
class AngelTokens:
    """The day's session: what ``loginByPassword`` returned. Never logged."""

    jwt: str
    refresh: str
    feed: str
    client_code: str

    def __repr__(self) -> str:
        return f"AngelTokens(client_code={self.client_code!r}, ...)"

    @classmethod
    def from_token(cls, token: SessionToken) -> AngelTokens:
        extra = token.extra
        return cls(
            token.access_token,
            str(extra.get("refresh_token", "")),
            str(extra.get("feed_token", "")),
            str(extra.get("client_code", "")),
        )

    def to_token(self, expires_at: datetime) -> SessionToken:
        return SessionToken(
            self.jwt,
            expires_at,
            {
                "refresh_token": self.refresh,
                "feed_token": self.feed,
                "client_code": self.client_code,
            },
        )


class _Pacer:
    """At most one call per ``interval`` seconds for one endpoint (Angel's book reads: 1/s)."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if self.interval <= 0:
            return
        async with self._lock:
            delay = self._next - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next = time.monotonic() + self.interval


def make_client(
    api_key: str, tokens: AngelTokens | None, endpoints: AngelEndpoints, timeout: float
) -> Any:
    """A ``SmartConnect`` pointed at ``endpoints`` (blocking: call it in a worker thread)."""
    sdk = load_sdk()
    client = sdk.SmartConnect(
        api_key=api_key,
        access_token=tokens.jwt if tokens else None,
        refresh_token=tokens.refresh if tokens else None,
        feed_token=tokens.feed if tokens else None,
        userId=tokens.client_code if tokens else None,
        root=endpoints.root,
        timeout=timeout,
    )
    # individual_order_details() builds its URL from the class attribute, not ``root``.
    client._rootUrl = endpoints.root
    return client


class AngelExecution:
    """The ``ExecutionClient`` port on Angel One. ``name`` is ``"angelone"``.

    ``on_session_expired`` is called (on the loop) whenever Angel says the token is no
    longer valid, so the app can prompt a login; the failing call still raises.
    """

    name = BROKER_ID
    limits = LIMITS
    # SmartAPI (smartapi-python 1.5.5, Angel's order docs) has no field for SEBI's algo id:
    # Angel stamps its generic algo id on API orders; ours carry their tag as ``ordertag``.
    algo_form: str | None = None
    tag_field = "ordertag"

    def __init__(
        self,
        api_key: str,
        tokens: AngelTokens | None,
        instruments: AngelInstruments,
        *,
        throttle: SendThrottle,
        endpoints: AngelEndpoints | None = None,
        clock: Clock | None = None,
        timeout: float = 7.0,
        executor: Executor | None = None,
        on_session_expired: Callable[[], None] | None = None,
        lookup_attempts: int = 3,
        lookup_delay: float = 0.5,
        book_interval: float = BOOK_INTERVAL,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tag_prefix: str = "DT",
        master_loader: Callable[[], Awaitable[InstrumentMaster]] | None = None,
        bus: EventBus | None = None,
        confirm_after: float = 0.5,
    ) -> None:
        self._master_loader = master_loader
        self._bus = bus
        self.confirm_after = confirm_after
        self._filled: dict[str, int] = {}
        self._background: set[asyncio.Task[None]] = set()
        self.api_key = api_key
        self.tokens = tokens
        self.instruments = instruments
        self.throttle = throttle
        self.endpoints = endpoints or AngelEndpoints()
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self._executor = executor
        self._on_session_expired = on_session_expired
        self._lookup_attempts = max(1, lookup_attempts)
        self._lookup_delay = lookup_delay
        self._sleep = sleep
        self._tags = TagLedger(self.limits, tag_prefix)
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._pacers: dict[str, _Pacer] = {}
        self._book_interval = book_interval
        self._varieties: dict[str, str] = {}
        self._unique: dict[str, str] = {}
        self.placement_attempts = 0

    # -- plumbing ---------------------------------------------------------------------------

    async def client(self) -> Any:
        """The SDK client, built (and the SDK imported) in a worker thread on first use."""
        if self._client is None:
            async with self._client_lock:
                if self._client is None:
                    self._client = await self._raw(
                        make_client, self.api_key, self.tokens, self.endpoints, self._timeout
                    )
        return self._client

    async def login(self, client_code: str, pin: str, totp: str) -> AngelTokens:
        """``loginByPassword`` (client code, PIN, TOTP) through the SDK; the new tokens are
        used from here on and returned for the caller to store."""
        client = await self.client()
        try:
            body = await self._raw(client.generateSession, client_code, pin, totp)
        except Exception as exc:
            raise map_exception(exc, "log in") from None
        raise_for_body(body, "log in")
        tokens = AngelTokens(
            str(client.access_token),
            str(client.refresh_token),
            str(client.feed_token),
            str(client.userId or client_code),
        )
        self.set_tokens(tokens)
        return tokens

    def set_tokens(self, tokens: AngelTokens) -> None:
        """A new day's session (after a login or a renewal)."""
        self.tokens = tokens
        client = self._client
        if client is not None:
            client.setAccessToken(tokens.jwt)
            client.setRefreshToken(tokens.refresh)
            client.setFeedToken(tokens.feed)
            client.setUserId(tokens.client_code)

    async def _ready(self) -> None:
        """The session and the day's master, both needed before any order call."""
        if self.tokens is None:
            raise self._expired(
                SessionExpired("no Angel One session today: log in to Angel One (TOTP)")
            )
        if not len(self.instruments) and self._master_loader is not None:
            self.instruments.use(await self._master_loader())

    async def _raw(self, fn: Callable[..., T], *args: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args))

    def _expired(self, error: BrokerError) -> BrokerError:
        if isinstance(error, SessionExpired) and self._on_session_expired is not None:
            try:
                self._on_session_expired()
            except Exception:
                log.exception("session-expired callback failed")
        return error

    async def _call(self, action: str, method: str, *args: Any, pace: bool = False) -> Any:
        """Call an SDK method; return the successful body's ``data``, or raise mapped."""
        if pace:
            pacer = self._pacers.get(method)
            if pacer is None:
                pacer = self._pacers[method] = _Pacer(self._book_interval)
            await pacer.wait()
        client = await self.client()
        try:
            body = await self._raw(getattr(client, method), *args)
        except Exception as exc:
            raise self._expired(map_exception(exc, action)) from exc
        try:
            ok = raise_for_body(body, action)
        except BrokerError as error:
            raise self._expired(error) from None
        return ok.get("data")

    # -- orders -----------------------------------------------------------------------------

    def _tag_for(self, request: OrderRequest) -> str:
        return self._tags.claim(request.tag)

    def _where(self, key: str) -> tuple[str, str, str, Decimal]:
        listing = self.instruments.listing(key)  # InstrumentUnknown names the key
        exch_seg, token = self.instruments.ident(key)
        if not listing.instrument.tradable:
            raise InstrumentUnknown(f"{key} is an index: it has prices but cannot be traded")
        return exch_seg, token, self.instruments.angel_symbol(key), listing.instrument.tick_size

    async def ltp(self, key: str) -> Decimal:
        await self._ready()
        exch_seg, token, symbol, _ = self._where(key)
        data = await self._call("read last price", "ltpData", exch_seg, symbol, token)
        return Decimal(str(data["ltp"]))

    async def _protect(self, request: OrderRequest, tick: Decimal) -> OrderRequest:
        """Apply the trader's own market protection: MARKET -> LIMIT, SL-M -> SL."""
        protection = request.market_protection
        if protection is None or protection.percent is None:
            return request  # Angel's own market price protection applies
        percent = protection.percent
        if request.order_type is OrderType.MARKET:
            reference = await self.ltp(request.key)
            price = mapping.protected_limit(request.side, reference, Decimal(percent), tick)
            return replace(request, order_type=OrderType.LIMIT, price=price)
        if request.order_type is OrderType.SL_M and request.trigger_price is not None:
            price = mapping.protected_limit(
                request.side, request.trigger_price, Decimal(percent), tick
            )
            return replace(request, order_type=OrderType.SL, price=price)
        return request

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request``; return it acknowledged (PENDING with Angel's order id), or, when
        a lost answer had to be resolved, as found in the order book."""
        await self._ready()
        exch_seg, token, symbol, tick = self._where(request.key)
        tag = self._tag_for(request)
        request = replace(request, tag=tag)
        sent = await self._protect(request, tick)
        params = mapping.order_params(sent, symbol, token, exch_seg)
        client = await self.client()
        await self.throttle.acquire()
        retried = False
        while True:
            self.placement_attempts += 1
            try:
                body = await self._raw(client.placeOrderFullResponse, dict(params))
                data = raise_for_body(body, "place order").get("data") or {}
            except Exception as exc:
                error = exc if isinstance(exc, BrokerError) else map_exception(exc, "place order")
                self._expired(error)
                if not outcome_unknown(error):
                    raise error from None
                log.warning("placement of tag %s ended without an answer: %s", tag, error)
                found = await self._find_after_failure(tag, error)
                if found is not None:
                    return replace(found, request=replace(found.request, source=request.source))
                if retried:
                    raise OutcomeUnknown(
                        "place order: Angel One did not answer twice and the order (tag "
                        f"{tag}) is not in the order book: it was not placed"
                    ) from None
                retried = True
                await self.throttle.acquire()
                continue
            order_id = str(data.get("orderid") or "")
            if not order_id:
                raise OutcomeUnknown(
                    f"place order: Angel One answered without an order id; look for tag {tag} "
                    "in the order book before placing again"
                )
            self._varieties[order_id] = params["variety"]
            if data.get("uniqueorderid"):
                self._unique[order_id] = str(data["uniqueorderid"])
            now = self._clock.now()
            ack = Order(
                order_id=order_id,
                request=sent,
                status=OrderStatus.PENDING,
                placed_at=now,
                updated_at=now,
                broker_order_id=self._unique.get(order_id),
            )
            if self._bus is not None:
                self._publish(ack)
                self._spawn(self._confirm(order_id))
            return ack

    async def _find_after_failure(self, tag: str, cause: BrokerError) -> Order | None:
        return await find_after_failure(
            "Angel One", tag, cause, lambda: self.order_by_tag(tag),
            attempts=self._lookup_attempts, delay=self._lookup_delay, sleep=self._sleep,
        )  # fmt: skip

    async def _book(self) -> list[Mapping[str, Any]]:
        rows = await self._call("read order book", "orderBook", pace=True)
        result: list[Mapping[str, Any]] = list(rows or [])
        for row in result:
            order_id = str(row.get("orderid"))
            if row.get("variety"):
                self._varieties[order_id] = str(row["variety"])
            if row.get("uniqueorderid"):
                self._unique[order_id] = str(row["uniqueorderid"])
        return result

    def _order(self, row: Mapping[str, Any]) -> Order:
        try:
            order = mapping.order_from_angel(row, self.instruments.key_of, self._clock.now())
        except mapping.MappingError as exc:
            raise OrderRejected(f"read order {row.get('orderid')}: {exc}", rule="mapping") from exc
        return self._publish(order)

    def order_update(self, row: Mapping[str, Any]) -> Order | None:
        """One order as the order-update socket pushed it (``orderData``: the order book's
        record shape), mapped and published like a book read. An unmappable record is
        logged and skipped: the next book read (every reconnect) has it again."""
        order_id = str(row.get("orderid") or "")
        if not order_id:
            return None
        if row.get("variety"):
            self._varieties[order_id] = str(row["variety"])
        if row.get("uniqueorderid"):
            self._unique[order_id] = str(row["uniqueorderid"])
        try:
            return self._order(row)
        except OrderRejected as exc:
            log.warning("Angel order update skipped: %s", exc)
            return None

    def _publish(self, order: Order) -> Order:
        """Angel is the source of truth: every state we learn goes on the bus (``ORDERS``);
        a fill we had not seen also brings the trades and positions (``FILLS``,
        ``POSITIONS``). What we learn comes from what we ask (after each placement, change
        or cancel, and in every book read) and from Angel's order-update socket
        (``AngelOrderStream``, the parts' ``order_stream``, which calls ``order_update``)."""
        bus = self._bus
        if bus is None:
            return order
        bus.publish(ORDERS, order)
        if order.filled_quantity > self._filled.get(order.order_id, 0):
            self._filled[order.order_id] = order.filled_quantity
            self._spawn(self._after_fill())
        return order

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _after_fill(self) -> None:
        bus = self._bus
        assert bus is not None
        try:
            bus.publish_many(FILLS, await self.fills())
            bus.publish_many(POSITIONS, await self.positions())
        except BrokerError as exc:
            log.warning("trades and positions not refreshed after a fill: %s", exc)

    async def _confirm(self, order_id: str) -> None:
        """Read a new order back shortly after placing it (it is PENDING until then)."""
        await asyncio.sleep(self.confirm_after)
        try:
            await self.order_status(order_id)  # publishes what it finds
        except BrokerError as exc:
            log.info("order %s not read back after placing: %s", order_id, exc)

    async def order_by_tag(self, tag: str) -> Order | None:
        await self._ready()
        for row in await self._book():
            if str(row.get("ordertag") or "") == tag:
                return self._order(row)
        return None

    async def _row(self, order_id: str) -> Mapping[str, Any]:
        await self._ready()
        unique = self._unique.get(order_id)
        if unique is not None:
            client = await self.client()
            try:
                body = await asyncio.wait_for(
                    self._raw(client.individual_order_details, unique), self._timeout + 1
                )
            except (TimeoutError, Exception):
                body = None
            if isinstance(body, Mapping) and body.get("status") is True and body.get("data"):
                return dict(body["data"])
        for row in await self._book():
            if str(row.get("orderid")) == order_id:
                return row
        raise OrderNotFound(f"order {order_id} is not in Angel One's order book")

    async def order_status(self, order_id: str) -> Order:
        return self._order(await self._row(order_id))

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        row = await self._row(order_id)
        current = self._order(row)
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be modified",
                rule="state",
            )
        order_type = change.order_type or current.request.order_type
        price = change.price if change.price is not None else current.request.price
        trigger = (
            change.trigger_price
            if change.trigger_price is not None
            else current.request.trigger_price
        )
        params = {
            "variety": str(row.get("variety") or self._varieties.get(order_id, "NORMAL")),
            "orderid": order_id,
            "ordertype": mapping.ORDER_TYPES[order_type],
            "producttype": str(row["producttype"]),
            "duration": str(row["duration"]),
            "price": f"{price:f}" if price is not None and order_type.needs_price else "0",
            "triggerprice": f"{trigger:f}"
            if trigger is not None and order_type.needs_trigger
            else "0",
            "quantity": str(change.quantity if change.quantity is not None else current.quantity),
            "tradingsymbol": str(row["tradingsymbol"]),
            "symboltoken": str(row["symboltoken"]),
            "exchange": str(row["exchange"]),
        }
        await self.throttle.acquire()
        data = await self._call("modify order", "modifyOrder", params)
        if isinstance(data, Mapping) and data.get("uniqueorderid"):
            self._unique[order_id] = str(data["uniqueorderid"])
        return await self.order_status(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        variety = self._varieties.get(order_id)
        if variety is None:
            row = await self._row(order_id)
            variety = str(row.get("variety") or "NORMAL")
        await self.throttle.acquire()
        data = await self._call("cancel order", "cancelOrder", order_id, variety)
        if isinstance(data, Mapping) and data.get("uniqueorderid"):
            self._unique[order_id] = str(data["uniqueorderid"])
        return await self.order_status(order_id)

    # -- snapshots --------------------------------------------------------------------------

    async def orders(self) -> list[Order]:
        await self._ready()
        return [self._order(row) for row in await self._book()]

    async def fills(self) -> list[Fill]:
        await self._ready()
        rows = await self._call("read trade book", "tradeBook", pace=True) or []
        day = self._clock.now()
        return [mapping.fill_from_angel(r, self.instruments.key_of, day) for r in rows]

    async def positions(self) -> list[Position]:
        await self._ready()
        rows = await self._call("read positions", "position", pace=True) or []
        return [mapping.position_from_angel(r, self.instruments.key_of) for r in rows]

    async def holdings(self) -> list[Holding]:
        await self._ready()
        data = await self._call("read holdings", "holding", pace=True) or []
        rows = data.get("holdings", []) if isinstance(data, Mapping) else data
        return [mapping.holding_from_angel(r, self.instruments.key_of) for r in rows]

    async def funds(self) -> Funds:
        data = await self._call("read funds", "rmsLimit")
        return mapping.funds_from_angel(data or {})

    async def profile(self) -> Mapping[str, Any]:
        await self._ready()
        assert self.tokens is not None
        data = await self._call("read profile", "getProfile", self.tokens.refresh)
        return dict(data or {})

    def now(self) -> datetime:
        return self._clock.now()
