"""``KiteBroker``: the ``ExecutionClient`` port on Zerodha's official kiteconnect SDK.

kiteconnect is a blocking ``requests`` client, so every call runs in a worker thread and the
event loop never waits on the network. The SDK is imported in the constructor only: importing
it costs about 0.6 s and the CLI must not pay that unless Kite is configured.

Placement is the one call that must never be repeated blindly. Each order carries our own
tag (unique, at most 20 characters); when a placement times out, loses its connection or
meets a gateway error, we do not know whether Kite recorded it, so we look the tag up in the
order book first and place again (once) only if it is not there.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import Executor
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.kite import mapping
from services.brokers.kite.config import LIMITS, KiteEndpoints
from services.brokers.kite.errors import (
    OutcomeUnknown,
    SessionExpired,
    map_error,
    outcome_unknown,
)
from services.brokers.kite.instruments import ParsedMaster, parse_instruments
from services.brokers.order_tags import TagLedger, find_after_failure
from services.brokers.ports import BrokerLimits
from services.brokers.throttle import OrderThrottle
from services.clock import Clock, SystemClock, is_market_open, to_ist
from services.domain import (
    Bar,
    Fill,
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Tick,
    Timeframe,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_TAG_LENGTH = LIMITS.tag_max_length
# Segments whose regular session is the NSE equity session; outside it an order goes in as
# an after-market order. MCX and CDS keep other hours, so they are never switched to AMO.
_AMO_EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO"})


class KiteBroker:
    """Zerodha through Kite Connect. ``name`` is ``"zerodha"``.

    ``on_session_expired`` is called (on the event loop) whenever Kite says the access token
    is no longer valid, so the app can show its re-login prompt; the call that failed still
    raises ``SessionExpired``.
    """

    name = "zerodha"
    limits: BrokerLimits = LIMITS
    # How SEBI's algo id travels (services.node.sebi.apply_algo_id): an order parameter.
    algo_form: str | None = "Kite's algo_id order parameter"

    def __init__(
        self,
        api_key: str,
        access_token: str | None = None,
        *,
        endpoints: KiteEndpoints | None = None,
        clock: Clock | None = None,
        throttle: OrderThrottle | None = None,
        timeout: float = 7.0,
        executor: Executor | None = None,
        on_session_expired: Callable[[], None] | None = None,
        amo_outside_hours: bool = True,
        lookup_attempts: int = 3,
        lookup_delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tag_prefix: str = "DT",
    ) -> None:
        from kiteconnect import KiteConnect  # type: ignore[import-untyped]  # lazy, see docstring

        self.endpoints = endpoints or KiteEndpoints()
        self.api_key = api_key
        # SEBI: the exchange-registered algo id sent with every order (the order node sets it).
        self.algo_id: str | None = None
        self._kite: Any = KiteConnect(
            api_key, access_token=access_token, root=self.endpoints.root, timeout=timeout
        )
        # login_url() reads this class constant; an instance attribute redirects it.
        self._kite._default_login_uri = self.endpoints.login
        self._clock = clock or SystemClock()
        self.throttle = throttle or OrderThrottle.for_limits(LIMITS, self._clock, broker="Kite")
        self._executor = executor
        self._on_session_expired = on_session_expired
        self._amo_outside_hours = amo_outside_hours
        self._lookup_attempts = max(1, lookup_attempts)
        self._lookup_delay = lookup_delay
        self._sleep = sleep
        self._tags = TagLedger(self.limits, tag_prefix)
        self._varieties: dict[str, str] = {}
        self.placement_attempts = 0  # SDK place_order calls made, for tests and metrics

    # -- plumbing ---------------------------------------------------------------------------

    async def _raw(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    async def _call(self, action: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self._raw(fn, *args, **kwargs)
        except Exception as exc:
            raise self._mapped(exc, action) from exc

    def _mapped(self, exc: BaseException, action: str) -> BrokerError:
        error = map_error(exc, action)
        if isinstance(error, SessionExpired) and self._on_session_expired is not None:
            try:
                self._on_session_expired()
            except Exception:
                log.exception("session-expired callback failed")
        return error

    # -- session ----------------------------------------------------------------------------

    @property
    def access_token(self) -> str | None:
        token: str | None = self._kite.access_token
        return token

    def login_url(self) -> str:
        url: str = self._kite.login_url()
        return url

    async def create_session(self, request_token: str, api_secret: str) -> str:
        """Exchange the login redirect's ``request_token`` for the day's access token."""
        data = await self._call(
            "log in", self._kite.generate_session, request_token, api_secret=api_secret
        )
        token = str(data["access_token"])
        self._kite.set_access_token(token)
        return token

    def set_access_token(self, token: str) -> None:
        self._kite.set_access_token(token)

    async def profile(self) -> dict[str, Any]:
        data: dict[str, Any] = await self._call("read profile", self._kite.profile)
        return data

    @staticmethod
    def checksum(api_key: str, request_token: str, api_secret: str) -> str:
        """The SHA-256 Kite expects with a request token (what the SDK computes)."""
        return hashlib.sha256((api_key + request_token + api_secret).encode()).hexdigest()

    # -- orders -----------------------------------------------------------------------------

    def _tag_for(self, request: OrderRequest) -> str:
        return self._tags.claim(request.tag)

    def _variety_for(self, request: OrderRequest) -> str:
        if request.amo:
            return mapping.VARIETY_AMO
        exchange, _ = mapping.split_key(request.key)
        if (
            self._amo_outside_hours
            and exchange in _AMO_EXCHANGES
            and not is_market_open(self._clock.now())
        ):
            return mapping.VARIETY_AMO
        return mapping.VARIETY_REGULAR

    async def place_order(self, request: OrderRequest, *, variety: str | None = None) -> Order:
        """Place ``request``; ``variety`` ("regular" or "amo") overrides the clock's choice.

        Returns the order as acknowledged (PENDING with Kite's order id), or, when a lost
        answer had to be reconciled, as found in the order book.
        """
        variety = variety or self._variety_for(request)
        tag = self._tag_for(request)
        try:
            params = mapping.order_params(request, variety=variety, tag=tag,
                                          algo_id=self.algo_id)  # fmt: skip
        except mapping.MappingError as exc:
            raise OrderRejected(f"place order: {exc}", rule="kite-params") from exc
        request = replace(request, tag=tag)
        await self.throttle.acquire()
        retried = False
        while True:
            self.placement_attempts += 1
            try:
                order_id = await self._raw(self._kite.place_order, **params)
            except Exception as exc:
                error = self._mapped(exc, "place order")
                if not outcome_unknown(error):
                    raise error from exc
                log.warning("placement of tag %s ended without an answer: %s", tag, error)
                found = await self._find_after_failure(tag, error)
                if found is not None:
                    self._varieties[found.order_id] = variety
                    return replace(found, request=replace(found.request, source=request.source))
                if retried:
                    raise OutcomeUnknown(
                        f"place order: Kite did not answer twice and the order (tag {tag}) is "
                        "not in the order book: it was not placed"
                    ) from exc
                retried = True
                await self.throttle.acquire()
                continue
            now = self._clock.now()
            order_id = str(order_id)
            self._varieties[order_id] = variety
            return Order(
                order_id=order_id,
                request=request,
                status=OrderStatus.PENDING,
                placed_at=now,
                updated_at=now,
                broker_order_id=order_id,
            )

    async def _find_after_failure(self, tag: str, cause: BrokerError) -> Order | None:
        return await find_after_failure(
            "Kite", tag, cause, lambda: self.find_by_tag(tag),
            attempts=self._lookup_attempts, delay=self._lookup_delay, sleep=self._sleep,
        )  # fmt: skip

    async def find_by_tag(self, tag: str) -> Order | None:
        records = await self._call("read order book", self._kite.orders)
        for record in records:
            tags = record.get("tags") or ()
            if record.get("tag") == tag or tag in tags:
                order = mapping.order_from_kite(record)
                self._varieties[order.order_id] = mapping.variety_of(record)
                return order
        return None

    async def _history(self, order_id: str) -> list[dict[str, Any]]:
        try:
            records: list[dict[str, Any]] = await self._raw(self._kite.order_history, order_id)
        except Exception as exc:
            error = self._mapped(exc, f"read order {order_id}")
            if any(w in str(exc).lower() for w in ("not found", "find that", "invalid order")):
                raise OrderNotFound(f"order {order_id} is not in Kite's order book") from exc
            raise error from exc
        if not records:
            raise OrderNotFound(f"order {order_id} is not in Kite's order book")
        self._varieties[order_id] = mapping.variety_of(records[-1])
        return records

    async def order(self, order_id: str) -> Order:
        """The order's latest state from its history at Kite."""
        return mapping.order_from_kite((await self._history(order_id))[-1])

    async def order_status(self, order_id: str) -> Order:
        return await self.order(order_id)

    async def order_by_tag(self, tag: str) -> Order | None:
        return await self.find_by_tag(tag)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        current = await self.order(order_id)
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be modified",
                rule="state",
            )
        params: dict[str, Any] = {}
        if change.quantity is not None:
            params["quantity"] = change.quantity
        if change.price is not None:
            params["price"] = str(change.price)
        if change.trigger_price is not None:
            params["trigger_price"] = str(change.trigger_price)
        if change.order_type is not None:
            params["order_type"] = change.order_type.value
        new_type = change.order_type or current.request.order_type
        if new_type in (OrderType.MARKET, OrderType.SL_M):
            params["market_protection"] = mapping.MARKET_PROTECTION_AUTO
        await self._call(
            "modify order",
            self._kite.modify_order,
            variety=self._varieties[order_id],
            order_id=order_id,
            **params,
        )
        return await self.order(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        variety = self._varieties.get(order_id)
        if variety is None:
            await self._history(order_id)
            variety = self._varieties[order_id]
        await self._call(
            "cancel order", self._kite.cancel_order, variety=variety, order_id=order_id
        )
        return await self.order(order_id)

    # -- snapshots --------------------------------------------------------------------------

    async def orders(self) -> list[Order]:
        records = await self._call("read order book", self._kite.orders)
        result = []
        for record in records:
            self._varieties[str(record["order_id"])] = mapping.variety_of(record)
            result.append(mapping.order_from_kite(record))
        return result

    async def fills(self) -> list[Fill]:
        records = await self._call("read trades", self._kite.trades)
        return [mapping.fill_from_kite(r) for r in records]

    async def positions(self) -> list[Position]:
        data = await self._call("read positions", self._kite.positions)
        return mapping.positions_from_kite(data)

    async def holdings(self) -> list[Holding]:
        records = await self._call("read holdings", self._kite.holdings)
        return [mapping.holding_from_kite(r) for r in records]

    async def funds(self, segment: str = "equity") -> Funds:
        data = await self._call("read funds", self._kite.margins)
        return mapping.funds_from_kite(data, segment)

    # -- market data ------------------------------------------------------------------------

    async def quote(self, keys: Iterable[str]) -> dict[str, Tick]:
        data = await self._call("read quotes", self._kite.quote, *keys)
        return {key: mapping.tick_from_quote(key, record) for key, record in data.items()}

    async def ltp(self, keys: Iterable[str]) -> dict[str, Decimal]:
        data = await self._call("read last prices", self._kite.ltp, *keys)
        return {key: mapping.dec(record["last_price"]) for key, record in data.items()}

    async def instruments(self, exchange: str | None = None) -> ParsedMaster:
        """Download and parse the instrument master (all exchanges or one)."""
        # The public instruments() turns tick sizes into floats; fetch the CSV bytes instead.
        if exchange:
            raw = await self._call(
                "download instruments",
                self._kite._get,
                "market.instruments",
                url_args={"exchange": exchange},
            )
        else:
            raw = await self._call(
                "download instruments", self._kite._get, "market.instruments.all"
            )
        return await asyncio.to_thread(parse_instruments, raw)

    async def history(
        self, key: str, token: int, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        records = await self._call(
            "read history",
            self._kite.historical_data,
            token,
            to_ist(start).strftime("%Y-%m-%d %H:%M:%S"),
            to_ist(end).strftime("%Y-%m-%d %H:%M:%S"),
            mapping.interval_for(timeframe),
        )
        return mapping.bars_from_records(key, timeframe, records)
