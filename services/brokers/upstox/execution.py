"""``UpstoxExecution``: the ``ExecutionClient`` port on the SDK's v3 order endpoints.

Orders go to ``/v3/order/place|modify|cancel`` (``OrderApiV3``, on ``order_host``); the books
and the account come from the v2 endpoints. Every placement carries our tag (Upstox keeps up
to 40 characters and returns it in the book), so when the answer to a placement is lost
(timeout, dropped connection, gateway page) the order book is searched for the tag before
anything is sent again: never two orders for one tag.

An order above the instrument's freeze quantity is sent with ``slice=true``; Upstox splits
it and answers with several order ids. The terminal keeps one order (``mapping.aggregate``):
its id is the first slice's, modify and cancel apply to every working slice, and the book,
the portfolio stream and the fills are folded back onto it.

The ``X-Algo-Name`` header (SEBI's framework, for strategies registered with the exchange) is
sent when ``algo_name`` is configured; manual orders go without it and Upstox stamps its
generic algo id. MARKET and SL-M orders always carry market protection (automatic unless
the request names a percentage).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, Protocol

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.errors import (
    InstrumentUnknown,
    InvalidInput,
    OutcomeUnknown,
    outcome_unknown,
)
from services.brokers.order_tags import TagLedger, find_after_failure
from services.brokers.ports import BrokerLimits, InstrumentMaster
from services.brokers.upstox import mapping
from services.brokers.upstox.client import UpstoxApi
from services.brokers.upstox.config import BROKER, limits
from services.brokers.upstox.instruments import MasterCache
from services.clock import Clock, SystemClock
from services.domain import (
    Exchange,
    Fill,
    Funds,
    Holding,
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
)

log = logging.getLogger(__name__)


class Throttle(Protocol):
    async def acquire(self) -> float: ...


class UpstoxExecution:
    """Upstox orders and account. ``name`` is ``"upstox"``."""

    name = BROKER
    # How SEBI's algo id travels (services.node.sebi.apply_algo_id): Upstox wants the
    # registered algo's name in a header on place, modify and cancel.
    algo_form: str | None = "Upstox's X-Algo-Name header"

    def __init__(
        self,
        api: UpstoxApi,
        master: InstrumentMaster | MasterCache,
        *,
        throttle: Throttle,
        clock: Clock | None = None,
        algo_name: str | None = None,
        lookup_attempts: int = 3,
        lookup_delay: float = 0.5,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        tag_prefix: str = "DT",
    ) -> None:
        self.api = api
        self.masters = MasterCache.fixed(master) if isinstance(master, InstrumentMaster) else master
        self.throttle = throttle
        self.limits: BrokerLimits = limits()
        self._clock = clock or SystemClock()
        self.algo_name = algo_name or None
        self._lookup_attempts = max(1, lookup_attempts)
        self._lookup_delay = lookup_delay
        self._sleep = sleep
        self._tags = TagLedger(self.limits, tag_prefix)
        # Sliced orders: our order id (the first slice) -> every slice id, and back.
        self._slices: dict[str, list[str]] = {}
        self._parent: dict[str, str] = {}
        # The latest record of every slice seen, to fold stream updates into one order.
        self._slice_orders: dict[str, Order] = {}
        self.placement_attempts = 0
        self.gtt: Any = None  # UpstoxGtt, set by config.build

    # -- keys -------------------------------------------------------------------------------

    def _key_of(self, record: mapping.Json) -> tuple[str, Exchange]:
        token = str(record.get("instrument_token") or record.get("instrument_key") or "")
        master = self.masters.master
        try:
            if master is None:
                raise InstrumentUnknown("no master")
            key = master.key_of(token)
            return key, master.instrument(key).exchange
        except InstrumentUnknown:
            exchange = Exchange(str(record.get("exchange") or "NSE"))
            symbol = record.get("trading_symbol") or record.get("tradingsymbol") or token
            return f"{exchange}:{symbol}", exchange

    def _order(self, record: mapping.Json) -> Order:
        key, exchange = self._key_of(record)
        try:
            return mapping.order_from_upstox(record, key, exchange)
        except mapping.MappingError as exc:
            raise BrokerError(f"read order {record.get('order_id')}: {exc}") from exc

    @property
    def algo_id(self) -> str | None:
        """The order node's ``algo_id`` setting, in Upstox's form: the algo name header."""
        return self.algo_name

    @algo_id.setter
    def algo_id(self, value: str | None) -> None:
        self.algo_name = value or None

    def _algo(self) -> dict[str, str]:
        return {"algo_name": self.algo_name} if self.algo_name else {}

    # -- placement --------------------------------------------------------------------------

    def _tag_for(self, request: OrderRequest) -> str:
        return self._tags.claim(request.tag)

    def _place_body(self, request: OrderRequest, tag: str, master: InstrumentMaster) -> Any:
        import upstox_client  # type: ignore[import-untyped]

        instrument = master.instrument(request.key)
        if not instrument.tradable:
            raise InvalidInput(f"{request.key} is an index: it has no order book")
        if request.product not in exchange_products(instrument):
            wanted = "NRML" if instrument.is_derivative else "CNC"
            raise InvalidInput(
                f"place order: {request.product.value} is not a product for {request.key} at "
                f"Upstox; use {wanted} or MIS"
            )
        freeze = instrument.freeze_quantity
        slice_ = bool(freeze and request.quantity > freeze)
        try:
            fields = mapping.place_body(
                request,
                instrument_key=str(master.broker_id(request.key)),
                tag=tag,
                slice_=slice_,
            )
            return upstox_client.PlaceOrderV3Request(**fields)
        except (mapping.MappingError, ValueError) as exc:
            raise InvalidInput(f"place order: {exc}") from exc

    async def place_order(self, request: OrderRequest) -> Order:
        """Place ``request``: the acknowledged order, or the one found by tag after a lost
        answer."""
        master = await self.masters.get()
        tag = self._tag_for(request)
        body = self._place_body(request, tag, master)
        request = replace(request, tag=tag)
        await self.throttle.acquire()
        retried = False
        while True:
            self.placement_attempts += 1
            try:
                response = await self.api.raw(self.api.orders_v3.place_order, body, **self._algo())
            except Exception as exc:
                error = self.api.mapped(exc, "place order")
                if not outcome_unknown(error):
                    raise error from exc
                log.warning("placement of tag %s ended without an answer: %s", tag, error)
                found = await self._find_after_failure(tag, error)
                if found is not None:
                    return replace(found, request=replace(found.request, source=request.source))
                if retried:
                    raise OutcomeUnknown(
                        f"place order: Upstox did not answer twice and the order (tag {tag}) is "
                        "not in the order book: it was not placed"
                    ) from exc
                retried = True
                await self.throttle.acquire()
                continue
            ids = [str(i) for i in (response.data.order_ids if response.data else None) or []]
            if not ids:
                raise OutcomeUnknown(
                    f"place order: Upstox answered without an order id (tag {tag}); check the "
                    "order book before placing again"
                )
            if len(ids) > 1:
                self._remember_slices(ids)
            now = self._clock.now()
            message = ""
            if response.status == "partial_success":
                message = "Upstox placed only some of the slices; see the order book"
            return Order(
                order_id=ids[0],
                request=request,
                status=OrderStatus.PENDING,
                placed_at=now,
                updated_at=now,
                status_message=message,
                broker_order_id=",".join(ids),
            )

    def _remember_slices(self, ids: list[str]) -> None:
        ids = sorted(ids)
        self._slices[ids[0]] = ids
        for child in ids:
            self._parent[child] = ids[0]

    async def _find_after_failure(self, tag: str, cause: BrokerError) -> Order | None:
        return await find_after_failure(
            "Upstox", tag, cause, lambda: self.order_by_tag(tag),
            attempts=self._lookup_attempts, delay=self._lookup_delay, sleep=self._sleep,
        )  # fmt: skip

    # -- lookups ----------------------------------------------------------------------------

    async def _book(self) -> list[Order]:
        await self.masters.get()
        response = await self.api.call(
            "read order book", self.api.orders.get_order_book, self.api.api_version
        )
        return [self._order(r.to_dict()) for r in response.data or []]

    def _fold(self, orders: list[Order]) -> list[Order]:
        """Fold slices into one order each, remembering which ids belong together."""
        folded = mapping.group_slices(orders)
        for order in folded:
            ids = (order.broker_order_id or order.order_id).split(",")
            if len(ids) > 1:
                self._remember_slices(ids)
        for order in orders:
            if order.order_id in self._parent:
                self._slice_orders[order.order_id] = order
        return folded

    async def order_by_tag(self, tag: str) -> Order | None:
        matches = [o for o in await self._book() if o.request.tag == tag]
        if not matches:
            return None
        return self._fold(matches)[0]

    async def _one(self, order_id: str) -> Order:
        await self.masters.get()
        try:
            response = await self.api.raw(
                self.api.orders.get_order_status, order_id=order_id
            )
        except Exception as exc:
            error = self.api.mapped(exc, f"read order {order_id}")
            raise error from exc
        if response.data is None:
            raise OrderNotFound(f"order {order_id} is not in Upstox's order book")
        return self._order(response.data.to_dict())

    async def order_status(self, order_id: str) -> Order:
        ids = self._slices.get(order_id)
        if ids is None:
            return await self._one(order_id)
        slices = [await self._one(i) for i in ids]
        for order in slices:
            self._slice_orders[order.order_id] = order
        return mapping.aggregate(slices)

    # -- modify and cancel ------------------------------------------------------------------

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        import upstox_client

        current = await self.order_status(order_id)
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be modified",
                rule="state",
            )
        ids = self._slices.get(order_id, [order_id])
        if change.quantity is not None and len(ids) > 1:
            raise InvalidInput(
                f"order {order_id} was sliced into {len(ids)} orders above the freeze quantity; "
                "its quantity cannot be changed, cancel it and place a new one"
            )
        order_type = change.order_type or current.request.order_type
        price = change.price if change.price is not None else current.request.price
        trigger = (
            change.trigger_price
            if change.trigger_price is not None
            else current.request.trigger_price
        )
        for slice_id in ids:
            record = (
                self._slice_orders.get(slice_id, current) if len(ids) > 1 else current
            )
            if not record.status.is_working:
                continue
            fields: dict[str, Any] = {
                "order_id": slice_id,
                "validity": mapping.VALIDITY_TO_UPSTOX[record.request.validity],
                "order_type": mapping.ORDER_TYPE_TO_UPSTOX[order_type],
                "price": mapping.number(price) if order_type.needs_price and price else 0.0,
                "trigger_price": (
                    mapping.number(trigger) if order_type.needs_trigger and trigger else 0.0
                ),
                "disclosed_quantity": 0,
            }
            if change.quantity is not None:
                fields["quantity"] = change.quantity
            if order_type in (OrderType.MARKET, OrderType.SL_M):
                fields["market_protection"] = mapping.market_protection(
                    current.request.market_protection
                )
            try:
                body = upstox_client.ModifyOrderRequest(**fields)
            except ValueError as exc:
                raise InvalidInput(f"modify order: {exc}") from exc
            await self.throttle.acquire()
            await self.api.call(
                "modify order",
                self.api.orders_v3.modify_order,
                body,
                throttled=False,
                **self._algo(),
            )
        return await self.order_status(order_id)

    async def cancel_order(self, order_id: str) -> Order:
        current = await self.order_status(order_id)
        ids = self._slices.get(order_id, [order_id])
        if not current.status.is_working:
            raise OrderRejected(
                f"order {order_id} is {current.status.value.lower()} and cannot be cancelled",
                rule="state",
            )
        for slice_id in ids:
            record = self._slice_orders.get(slice_id, current) if len(ids) > 1 else current
            if not record.status.is_working:
                continue
            await self.throttle.acquire()
            await self.api.call(
                "cancel order",
                self.api.orders_v3.cancel_order,
                slice_id,
                throttled=False,
                **self._algo(),
            )
        return await self.order_status(order_id)

    # -- the portfolio stream ---------------------------------------------------------------

    def order_from_update(self, record: mapping.Json) -> Order | None:
        """One portfolio-stream order update as the terminal's order (slices folded)."""
        try:
            order = self._order(record)
        except BrokerError:
            log.warning("unreadable Upstox order update for order %s", record.get("order_id"))
            return None
        parent = self._parent.get(order.order_id)
        if parent is None:
            return order
        self._slice_orders[order.order_id] = order
        slices = [self._slice_orders[i] for i in self._slices[parent] if i in self._slice_orders]
        if len(slices) < len(self._slices[parent]):
            return None  # wait until every slice has been seen once
        return mapping.aggregate(slices)

    # -- snapshots --------------------------------------------------------------------------

    async def orders(self) -> list[Order]:
        return self._fold(await self._book())

    async def fills(self) -> list[Fill]:
        await self.masters.get()
        response = await self.api.call(
            "read trades", self.api.orders.get_trade_history, self.api.api_version
        )
        fills = []
        for item in response.data or []:
            record = item.to_dict()
            key, exchange = self._key_of(record)
            try:
                product = mapping.product_from_upstox(str(record["product"]), exchange)
                fill = mapping.fill_from_upstox(record, key, exchange, product)
            except mapping.MappingError as exc:
                raise BrokerError(f"read trades: {exc}") from exc
            parent = self._parent.get(fill.order_id)
            fills.append(replace(fill, order_id=parent) if parent else fill)
        return fills

    async def positions(self) -> list[Position]:
        await self.masters.get()
        response = await self.api.call(
            "read positions", self.api.portfolio.get_positions, self.api.api_version
        )
        out = []
        for item in response.data or []:
            record = item.to_dict()
            key, exchange = self._key_of(record)
            try:
                out.append(mapping.position_from_upstox(record, key, exchange))
            except mapping.MappingError as exc:
                raise BrokerError(f"read positions: {exc}") from exc
        return out

    async def holdings(self) -> list[Holding]:
        await self.masters.get()
        response = await self.api.call(
            "read holdings", self.api.portfolio.get_holdings, self.api.api_version
        )
        out = []
        for item in response.data or []:
            record = item.to_dict()
            key, _ = self._key_of(record)
            out.append(mapping.holding_from_upstox(record, key))
        return out

    async def funds(self, segment: str = "equity") -> Funds:
        response = await self.api.call(
            "read funds", self.api.user.get_user_fund_margin, self.api.api_version
        )
        data = response.data or {}
        entry = data.get(segment)
        if entry is None:
            raise BrokerError(f"read funds: Upstox sent no {segment} segment")
        available = mapping.money(entry.available_margin)
        used = mapping.money(entry.used_margin)
        return Funds(opening_balance=available + used, available_cash=available, margin_used=used)

    async def profile(self) -> dict[str, Any]:
        response = await self.api.call(
            "read profile", self.api.user.get_profile, self.api.api_version
        )
        data: dict[str, Any] = response.data.to_dict() if response.data else {}
        return data

    async def static_ips(self) -> dict[str, Any]:
        """The static IPs registered for orders on this account (``GET /v2/user/ip``):
        ``primary_ip``, ``secondary_ip`` and when each was last changed."""
        response = await self.api.call("read the registered static IPs", self.api.user.get_user_ips)
        data: dict[str, Any] = response.data.to_dict() if response.data else {}
        return data

    async def static_ip_status(self) -> tuple[bool, str]:
        """``dalal check-connections``' static-IP line: usable for orders, and why not.
        Whether *this* machine's address is the registered one is not checked (that would
        mean asking a service on the internet); Upstox says so on an order (UDAPI1154)."""
        try:
            ips = await self.static_ips()
        except BrokerError as exc:
            return False, f"could not read the registered static IPs: {exc}"
        registered = [
            f"{label} {ips[field]}"
            for label, field in (("primary", "primary_ip"), ("secondary", "secondary_ip"))
            if ips.get(field)
        ]
        if not registered:
            return False, (
                "no static IP registered: Upstox refuses every API order (UDAPI1154); register "
                "this machine's public IP in the Upstox developer console (My Account -> Apps)"
            )
        return True, (
            f"orders accepted only from {' and '.join(registered)} "
            "(this machine's address is not checked)"
        )


def exchange_products(instrument: Instrument) -> frozenset[Product]:
    """The products Upstox accepts for ``instrument``: CNC on cash, NRML on derivatives."""
    if instrument.is_derivative:
        return frozenset({Product.MIS, Product.NRML})
    return frozenset({Product.MIS, Product.CNC})

