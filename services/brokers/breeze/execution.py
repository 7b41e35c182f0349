"""``BreezeExecution``: the ``ExecutionClient`` port on ICICI's official breeze-connect SDK.

The SDK is a blocking ``requests`` client: every call runs in a worker thread, the event
loop never waits on the network. Each call first takes a slot from the API-call throttle
(Breeze allows 5,000 calls a day per key, all calls counted, the count persisted across
restarts); placements also take one from the order throttle (10 a second).

Placement is the one call never repeated blindly. Our tag travels as Breeze's
``user_remark``; when a placement times out, loses its connection or meets an HTML gateway
page, we look the tag up in the day's order book first and place again (once, same tag) only
if it is not there.

Breeze needs the exchange with every order id; ids we placed are remembered, others are
looked up on the exchanges their id letter allows (``...N...`` NSE/NFO, ``...B...`` BSE/BFO).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sys
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import UTC, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from services.broker import OrderChange
from services.brokers.breeze import mapping
from services.brokers.breeze.config import LIMITS, NAME, REQUEST_TIMEOUT, BreezeEndpoints
from services.brokers.breeze.errors import map_exception, seconds_to_midnight, success
from services.brokers.breeze.instruments import BreezeContract, Masters, SecurityMaster
from services.brokers.breeze.session import sdk_client
from services.brokers.errors import (
    BrokerError,
    InstrumentUnknown,
    InvalidInput,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    RateLimited,
    SessionExpired,
    ThrottleLimited,
    outcome_unknown,
)
from services.brokers.order_tags import TagLedger, find_after_failure
from services.brokers.ports import BrokerLimits, SessionToken
from services.brokers.throttle import OrderThrottle
from services.bus import FILLS, ORDERS, POSITIONS, EventBus
from services.clock import IST, Clock, SystemClock, to_ist
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

EXCHANGES = ("NSE", "NFO", "BSE", "BFO")
_BY_LETTER = {"N": ("NSE", "NFO"), "B": ("BSE", "BFO")}


class BreezeExecution:
    """ICICI Direct through Breeze. ``name`` is ``"breeze"``.

    ``on_session_expired`` is called (on the loop) when ICICI says the session is gone, so
    the app can prompt a login; the failed call still raises ``SessionExpired``.
    """

    name = NAME
    limits: BrokerLimits = LIMITS
    # Breeze (breeze-connect 1.0.69's place_order) has no field for SEBI's algo id: ICICI
    # stamps its generic algo id on API orders; ours carry their tag as ``user_remark``.
    algo_form: str | None = None
    tag_field = "user_remark"

    def __init__(
        self,
        api_key: str,
        api_secret: str,
        token: SessionToken | None,
        masters: Masters,
        *,
        endpoints: BreezeEndpoints | None = None,
        clock: Clock | None = None,
        throttle: OrderThrottle,
        api_calls: OrderThrottle,
        executor: Executor | None = None,
        on_session_expired: Callable[[], None] | None = None,
        timeout: float = REQUEST_TIMEOUT,
        lookup_attempts: int = 3,
        lookup_delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        load_sdk: Callable[[BreezeEndpoints], Any] | None = None,
        bus: EventBus | None = None,
        confirm_after: float = 0.3,
    ) -> None:
        self.endpoints = endpoints or BreezeEndpoints()
        self._api_key = api_key
        self._api_secret = api_secret
        self._token = token
        self.masters = masters
        self._clock = clock or SystemClock()
        self.throttle = throttle
        self.api_calls = api_calls
        self._executor = executor
        self._on_session_expired = on_session_expired
        self._timeout = timeout
        self._lookup_attempts = max(1, lookup_attempts)
        self._lookup_delay = lookup_delay
        self._sleep = sleep
        self._load_sdk = load_sdk
        self._client: Any = None
        self._client_lock = asyncio.Lock()
        self._exchanges: dict[str, str] = {}  # order id -> Breeze exchange code
        # Market orders we sent as aggressive limits (by tag): reported back as MARKET, which
        # is what the trader asked for; after a restart Breeze's word (limit) is all we have.
        self._market_tags: set[str] = set()
        self._tags = TagLedger(self.limits)
        self.placement_attempts = 0
        self._bus = bus
        self._filled: dict[str, int] = {}  # order id -> filled quantity last published
        self._refreshing: asyncio.Task[None] | None = None
        self._confirming: set[asyncio.Task[None]] = set()
        self.confirm_after = confirm_after

    # -- plumbing ---------------------------------------------------------------------------

    def use_token(self, token: SessionToken) -> None:
        """A new day's session (after ``dalal login breeze`` or the login dialog)."""
        self._token = token
        client = self._client
        if client is not None:
            module = sys.modules[type(client).__module__]
            self._client = sdk_client(module, self._api_key, self._api_secret, token)

    async def _sdk(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._client_lock:
            if self._client is None:
                from services.brokers.breeze import sdk

                loader = self._load_sdk or sdk.load_sdk
                module = await asyncio.to_thread(loader, self.endpoints)
                sdk.http.timeout = self._timeout
                if self._token is None:
                    raise self._expired(
                        SessionExpired(
                            "no Breeze session today: log in to ICICI Direct (`dalal login breeze`)"
                        )
                    )
                self._client = sdk_client(module, self._api_key, self._api_secret, self._token)
            return self._client

    def _expired(self, error: SessionExpired) -> SessionExpired:
        if self._on_session_expired is not None:
            try:
                self._on_session_expired()
            except Exception:
                log.exception("session-expired callback failed")
        return error

    def _mapped(self, error: BrokerError) -> BrokerError:
        if isinstance(error, SessionExpired):
            return self._expired(error)
        return error

    def _count_call(self, action: str) -> None:
        try:
            self.api_calls.reserve()
        except ThrottleLimited as exc:
            raise RateLimited(
                f"{action}: held back: {self.api_calls.per_day:,} Breeze API calls already "
                "made today (ICICI allows 5,000 a key); more after midnight",
                retry_after=seconds_to_midnight(self._clock.now()),
            ) from exc

    async def call(self, action: str, method: str, /, **kwargs: Any) -> Any:
        """One SDK call: counted, in a worker thread, its answer unwrapped or mapped."""
        client = await self._sdk()
        self._count_call(action)
        loop = asyncio.get_running_loop()
        try:
            answer = await loop.run_in_executor(
                self._executor, functools.partial(getattr(client, method), **kwargs)
            )
        except Exception as exc:
            raise self._mapped(map_exception(exc, action)) from exc
        if answer is None:
            raise self._expired(SessionExpired(f"{action}: not logged in to Breeze"))
        try:
            return success(answer, action, self._clock.now())
        except BrokerError as exc:
            raise self._mapped(exc) from None

    def _order(self, record: dict[str, Any], master: SecurityMaster) -> Order:
        order = mapping.order_from_breeze(record, master)
        if order.request.tag in self._market_tags:
            order = replace(
                order, request=replace(order.request, order_type=OrderType.MARKET, price=None)
            )
        return self._publish(order)

    def _publish(self, order: Order) -> Order:
        """Breeze is the source of truth: every state we learn goes on the bus (``ORDERS``);
        a fill we had not seen also brings the trades and positions (``FILLS``, ``POSITIONS``).
        What we learn comes from what we ask, and from the order-notification stream
        (``BreezeOrderStream``, the parts' ``order_stream``), which calls ``order_notified``
        for each order that changed."""
        bus = self._bus
        if bus is None:
            return order
        bus.publish(ORDERS, order)
        before = self._filled.get(order.order_id, 0)
        if order.filled_quantity > before:
            self._filled[order.order_id] = order.filled_quantity
            if self._refreshing is None or self._refreshing.done():
                self._refreshing = asyncio.get_running_loop().create_task(self._after_fill())
        return order

    async def _confirm(self, order_id: str) -> None:
        await asyncio.sleep(self.confirm_after)
        try:
            await self.order_status(order_id)  # publishes what it finds
        except BrokerError as exc:
            log.info("order %s not read back after placing: %s", order_id, exc)
        finally:
            self._confirming = {t for t in self._confirming if not t.done()}

    async def _after_fill(self) -> None:
        bus = self._bus
        assert bus is not None
        try:
            bus.publish_many(FILLS, await self.fills())
            bus.publish_many(POSITIONS, await self.positions())
        except BrokerError as exc:
            log.warning("trades and positions not refreshed after a fill: %s", exc)

    async def _master(self) -> SecurityMaster:
        return await self.masters.get()

    async def _contract(self, key: str) -> BreezeContract:
        master = await self._master()
        contract = master.contract(key)
        if contract is None:
            raise InstrumentUnknown(f"{key} is not in today's ICICI security master")
        return contract

    def _day_range(self) -> tuple[str, str]:
        day = to_ist(self._clock.now()).date()
        start = datetime.combine(day, time(0, 0), tzinfo=IST)
        end = start + timedelta(days=1) - timedelta(seconds=1)
        fmt = "%Y-%m-%dT%H:%M:%S.000Z"
        return start.astimezone(UTC).strftime(fmt), end.astimezone(UTC).strftime(fmt)

    # -- orders -----------------------------------------------------------------------------

    def _tag_for(self, request: OrderRequest) -> str:
        return self._tags.claim(request.tag)

    async def _aggressive_price(self, request: OrderRequest, contract: BreezeContract) -> Any:
        rows = mapping.records(
            await self.call(
                "read quote for a market order",
                "get_quotes",
                stock_code=contract.stock_code,
                exchange_code=contract.exchange_code,
                expiry_date=contract.expiry_param,
                product_type="" if contract.product == "cash" else contract.product,
                right=contract.right if contract.product == "options" else "",
                strike_price=contract.strike_param if contract.product == "options" else "",
            )
        )
        row = next(
            (r for r in rows if str(r.get("exchange_code", "")).upper() == contract.exchange_code),
            None,
        )
        if row is None:
            raise OrderRejected(
                f"place order: Breeze has no quote for {request.key}, which a market order "
                "needs for its limit price",
                rule="market-price",
            )
        protection = request.market_protection
        percent = protection.percent if protection is not None else None
        try:
            return mapping.aggressive_limit(
                request.side,
                contract,
                mapping.dec(row.get("ltp")),
                mapping.dec(row.get("lower_circuit")),
                mapping.dec(row.get("upper_circuit")),
                percent,
            )
        except mapping.MappingError as exc:
            raise InvalidInput(f"place order: {exc}") from exc

    async def place_order(self, request: OrderRequest) -> Order:
        tag = self._tag_for(request)
        contract = await self._contract(request.key)
        price = None
        if request.order_type is OrderType.MARKET:
            price = await self._aggressive_price(request, contract)
        try:
            params = mapping.order_params(request, contract, tag=tag, price=price)
        except mapping.MappingError as exc:
            raise InvalidInput(f"place order: {exc}") from exc
        request = replace(request, tag=tag)
        if request.order_type is OrderType.MARKET:
            self._market_tags.add(tag)
        await self.throttle.acquire()
        retried = False
        while True:
            self.placement_attempts += 1
            try:
                result = await self.call("place order", "place_order", **params)
            except BrokerError as error:
                if not outcome_unknown(error):
                    raise
                log.warning("placement of tag %s ended without an answer: %s", tag, error)
                found = await self._find_after_failure(tag, contract.exchange_code, error)
                if found is not None:
                    return replace(found, request=replace(found.request, source=request.source))
                if retried:
                    raise OutcomeUnknown(
                        f"place order: Breeze did not answer twice and the order (tag {tag}) "
                        "is not in the order book: it was not placed"
                    ) from error
                retried = True
                await self.throttle.acquire()
                continue
            order_id = str((result or {}).get("order_id") or "")
            if not order_id:
                raise OutcomeUnknown(
                    f"place order: Breeze answered without an order id; look for tag {tag} "
                    "in the order book before placing again"
                )
            self._exchanges[order_id] = contract.exchange_code
            now = self._clock.now()
            ack = self._publish(
                Order(
                    order_id=order_id,
                    request=request,
                    status=OrderStatus.PENDING,
                    placed_at=now,
                    updated_at=now,
                    broker_order_id=order_id,
                )
            )
            if self._bus is not None:
                # No order stream yet: read the order back once to learn OPEN, FILLED or
                # REJECTED (one API call an order), so the blotter does not sit at PENDING.
                self._confirming.add(
                    asyncio.get_running_loop().create_task(self._confirm(order_id))
                )
            return ack

    async def _find_after_failure(
        self, tag: str, exchange: str, cause: BrokerError
    ) -> Order | None:
        return await find_after_failure(
            "Breeze", tag, cause, lambda: self._by_tag(tag, (exchange,)),
            attempts=self._lookup_attempts, delay=self._lookup_delay, sleep=self._sleep,
            fatal=(SessionExpired, RateLimited),
        )  # fmt: skip

    async def _list(self, exchange: str) -> list[dict[str, Any]]:
        start, end = self._day_range()
        try:
            rows = await self.call(
                f"read {exchange} order book",
                "get_order_list",
                exchange_code=exchange,
                from_date=start,
                to_date=end,
            )
        except OrderNotFound:
            return []  # Breeze answers "No Data Found" for an empty book
        return [dict(r) for r in mapping.records(rows)]

    async def _by_tag(self, tag: str, exchanges: tuple[str, ...]) -> Order | None:
        master = await self._master()
        for exchange in exchanges:
            for record in await self._list(exchange):
                if str(record.get("user_remark") or "") == tag:
                    order = self._order(record, master)
                    self._exchanges[order.order_id] = exchange
                    return order
        return None

    async def order_by_tag(self, tag: str) -> Order | None:
        return await self._by_tag(tag, EXCHANGES)

    def _candidates(self, order_id: str) -> tuple[str, ...]:
        known = self._exchanges.get(order_id)
        if known is not None:
            return (known,)
        letter = order_id[8:9]
        return _BY_LETTER.get(letter, EXCHANGES)

    async def _detail(self, order_id: str) -> dict[str, Any]:
        for exchange in self._candidates(order_id):
            try:
                rows = mapping.records(
                    await self.call(
                        f"read order {order_id}",
                        "get_order_detail",
                        exchange_code=exchange,
                        order_id=order_id,
                    )
                )
            except OrderNotFound:
                continue
            if rows:
                self._exchanges[order_id] = exchange
                return dict(rows[0])
        raise OrderNotFound(f"order {order_id} is not in Breeze's order book")

    async def order_notified(self, order_id: str, exchange: str) -> Order:
        """Breeze said ``order_id`` changed (its order-notification stream): read the order
        (one call, on the exchange the notification named) and publish it."""
        if exchange in EXCHANGES:
            self._exchanges.setdefault(order_id, exchange)
        return await self.order_status(order_id)

    async def order_status(self, order_id: str) -> Order:
        record = await self._detail(order_id)
        try:
            return self._order(record, await self._master())
        except mapping.MappingError as exc:
            raise BrokerError(f"read order {order_id}: {exc}") from exc

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        current = await self.order_status(order_id)
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be modified",
                rule="state",
            )
        exchange = self._exchanges[order_id]
        new_type = change.order_type or current.request.order_type
        price = change.price
        if new_type is OrderType.SL_M:
            raise InvalidInput("modify order: Breeze has no stop-loss-market (SL-M) order")
        if new_type is OrderType.MARKET:
            contract = await self._contract(current.key)
            request = replace(current.request, order_type=OrderType.MARKET)
            price = await self._aggressive_price(request, contract)
        word = {OrderType.LIMIT: "limit", OrderType.MARKET: "limit", OrderType.SL: "stoploss"}
        await self.call(
            "modify order",
            "modify_order",
            order_id=order_id,
            exchange_code=exchange,
            order_type=word[new_type] if change.order_type is not None else "",
            stoploss=format(change.trigger_price, "f") if change.trigger_price else "",
            quantity=str(change.quantity) if change.quantity is not None else "",
            price=format(price, "f") if price is not None else "",
            validity="",
            disclosed_quantity="",
            validity_date="",
        )
        return await self.order_status(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        current = await self.order_status(order_id)
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be cancelled",
                rule="state",
            )
        await self.call(
            "cancel order",
            "cancel_order",
            exchange_code=self._exchanges[order_id],
            order_id=order_id,
        )
        return await self.order_status(order_id)

    async def last_price(self, key: str) -> Decimal:
        """The last traded price from Breeze's quote (one API call)."""
        contract = await self._contract(key)
        rows = mapping.records(
            await self.call(
                f"read quote of {key}",
                "get_quotes",
                stock_code=contract.stock_code,
                exchange_code=contract.exchange_code,
                expiry_date=contract.expiry_param,
                product_type="" if contract.product == "cash" else contract.product,
                right=contract.right if contract.product == "options" else "",
                strike_price=contract.strike_param if contract.product == "options" else "",
            )
        )
        for row in rows:
            if str(row.get("exchange_code", "")).upper() == contract.exchange_code:
                return mapping.dec(row.get("ltp"))
        raise BrokerError(f"read quote of {key}: Breeze sent no quote for it")

    # -- snapshots --------------------------------------------------------------------------

    async def orders(self) -> list[Order]:
        master = await self._master()
        result: list[Order] = []
        for exchange in EXCHANGES:
            for record in await self._list(exchange):
                order = self._order(record, master)
                self._exchanges[order.order_id] = exchange
                result.append(order)
        return result

    async def fills(self) -> list[Fill]:
        master = await self._master()
        start, end = self._day_range()
        result: list[Fill] = []
        for exchange in EXCHANGES:
            try:
                rows = await self.call(
                    f"read {exchange} trades",
                    "get_trade_list",
                    from_date=start,
                    to_date=end,
                    exchange_code=exchange,
                    product_type="",
                    action="",
                    stock_code="",
                )
            except OrderNotFound:
                continue
            result.extend(mapping.fill_from_breeze(r, master) for r in mapping.records(rows))
        return result

    async def positions(self) -> list[Position]:
        master = await self._master()
        rows = await self.call("read positions", "get_portfolio_positions")
        return [mapping.position_from_breeze(r, master) for r in mapping.records(rows)]

    async def holdings(self) -> list[Holding]:
        master = await self._master()
        result: list[Holding] = []
        for exchange in ("NSE", "BSE"):
            try:
                rows = await self.call(
                    f"read {exchange} holdings",
                    "get_portfolio_holdings",
                    exchange_code=exchange,
                    from_date="",
                    to_date="",
                    stock_code="",
                    portfolio_type="",
                )
            except OrderNotFound:
                continue
            result.extend(mapping.holding_from_breeze(r, master) for r in mapping.records(rows))
        return result

    async def funds(self) -> Funds:
        data = await self.call("read funds", "get_funds")
        rows = mapping.records(data)
        if not rows:
            raise BrokerError("read funds: Breeze sent no funds record")
        return mapping.funds_from_breeze(rows[0])
