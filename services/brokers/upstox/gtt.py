"""``UpstoxGtt``: single-trigger GTT orders held at Upstox (v3 ``/order/gtt/...``).

The SDK's ``OrderApiV3`` has ``place_gtt_order``, ``modify_gtt_order``, ``cancel_gtt_order``
and ``get_gtt_order_details``; the requests are its ``GttPlaceOrderRequest`` /
``GttModifyOrderRequest`` / ``GttCancelOrderRequest`` models, so a value Upstox does not take
fails in the SDK before anything is sent. They count against the order APIs' limits (10/s,
500/min, 2,000 per 30 min), so every call goes through the execution client's throttle.

What is mapped, and what is refused rather than guessed:

* a *single* trigger: the rule ``ENTRY`` with ``trigger_type`` ``ABOVE`` (the price rises to
  the trigger) or ``BELOW``. Upstox's ``MULTIPLE`` type (an entry with its own target and
  stop-loss) is a bracket around a new entry, not the terminal's OCO on a held position, so
  the port (``UpstoxGttVenue``) refuses an OCO with ``NotOffered``;
* the order Upstox places when the rule fires carries no price: it is a market order, with
  the order's market protection (automatic when unset). A LIMIT, SL or SL-M order is
  refused, as are IOC and TTL validity (the order is a day order);
* products MIS (``I``), CNC and NRML (``D``), as for orders.

A GTT lives at Upstox until it fires, is cancelled or expires (a year); the terminal reads
its state back (``gtts``) instead of keeping a copy.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.brokers.errors import InvalidInput, NotOffered
from services.brokers.upstox import mapping
from services.clock import IST
from services.domain import OrderRequest, OrderType, Product, Side, Validity
from services.gtt import Gtt, GttKind, GttLeg, GttStatus, LegChange, changed_legs

if TYPE_CHECKING:
    from services.brokers.upstox.execution import UpstoxExecution


@dataclass(frozen=True, slots=True)
class UpstoxGttOrder:
    """One GTT as Upstox has it now. ``status`` is Upstox's word for its rule
    (``SCHEDULED``, ``TRIGGERED``, ``CANCELLED``, ``EXPIRED``...); ``order_id`` is the
    order it placed when it fired."""

    gtt_id: str
    key: str
    side: Side
    quantity: int
    product: Product
    trigger: Decimal
    rising: bool
    status: str
    order_id: str | None
    created_at: datetime | None
    expires_at: datetime | None


def _millis(value: Any) -> datetime | None:
    if not value:
        return None
    return datetime.fromtimestamp(int(value) / 1000, IST)


class UpstoxGtt:
    """Place, modify, cancel and read single-trigger GTTs through the official SDK."""

    def __init__(self, execution: UpstoxExecution) -> None:
        self.execution = execution
        self.api = execution.api

    def _rules(self, trigger: Decimal, rising: bool, request: OrderRequest) -> list[Any]:
        import upstox_client  # type: ignore[import-untyped]  # lazy, as the client's

        if trigger <= 0:
            raise InvalidInput(f"GTT trigger must be positive, not {trigger}")
        try:
            protection = mapping.market_protection(request.market_protection)
        except mapping.MappingError as exc:
            raise InvalidInput(f"place GTT: {exc}") from exc
        return [
            upstox_client.GttRule(
                strategy="ENTRY",
                trigger_type="ABOVE" if rising else "BELOW",
                trigger_price=mapping.number(trigger),
                market_protection=protection,
            )
        ]

    @staticmethod
    def _refuse(request: OrderRequest) -> None:
        if request.order_type is not OrderType.MARKET:
            raise InvalidInput(
                f"an Upstox GTT places a market order when it fires; a {request.order_type.value}"
                " order with its own price cannot be carried (use the terminal's GTT book)"
            )
        if request.validity is not Validity.DAY:
            raise InvalidInput(
                f"an Upstox GTT's order is a day order; {request.validity.value} is not offered"
            )

    async def place_single(
        self, trigger: Decimal, request: OrderRequest, *, rising: bool
    ) -> UpstoxGttOrder:
        """Rest ``request`` at Upstox until the price reaches ``trigger`` (from below when
        ``rising``); returns the GTT as Upstox then reports it."""
        import upstox_client

        self._refuse(request)
        master = await self.execution.masters.get()
        token = str(master.broker_id(request.key))  # InstrumentUnknown names the key
        body = upstox_client.GttPlaceOrderRequest(
            type="SINGLE",
            quantity=request.quantity,
            product=mapping.product_to_upstox(request.product),
            rules=self._rules(trigger, rising, request),
            instrument_token=token,
            transaction_type=mapping.SIDE_TO_UPSTOX[request.side],
        )
        await self.execution.throttle.acquire()
        response = await self.api.call(
            "place GTT", self.api.orders_v3.place_gtt_order, body, throttled=False
        )
        ids = list(response.data.gtt_order_ids or []) if response.data else []
        if not ids:
            raise InvalidInput("place GTT: Upstox answered without a GTT id")
        return await self.gtt(str(ids[0]))

    async def modify_single(
        self, gtt_id: str, trigger: Decimal, request: OrderRequest, *, rising: bool
    ) -> UpstoxGttOrder:
        """Move an active GTT's trigger (and quantity) in place at Upstox."""
        import upstox_client

        self._refuse(request)
        body = upstox_client.GttModifyOrderRequest(
            type="SINGLE",
            quantity=request.quantity,
            rules=self._rules(trigger, rising, request),
            gtt_order_id=gtt_id,
        )
        await self.execution.throttle.acquire()
        await self.api.call(
            f"modify GTT {gtt_id}", self.api.orders_v3.modify_gtt_order, body, throttled=False
        )
        return await self.gtt(gtt_id)

    async def cancel(self, gtt_id: str) -> UpstoxGttOrder:
        import upstox_client

        body = upstox_client.GttCancelOrderRequest(gtt_order_id=gtt_id)
        await self.execution.throttle.acquire()
        await self.api.call(
            f"cancel GTT {gtt_id}", self.api.orders_v3.cancel_gtt_order, body, throttled=False
        )
        return await self.gtt(gtt_id)

    async def gtts(self) -> list[UpstoxGttOrder]:
        """Every GTT on the account, as Upstox reports it now."""
        response = await self.api.call("read GTTs", self.api.orders_v3.get_gtt_order_details)
        return [self._from(record) for record in (response.data or [])]

    async def gtt(self, gtt_id: str) -> UpstoxGttOrder:
        response = await self.api.call(
            f"read GTT {gtt_id}", self.api.orders_v3.get_gtt_order_details, gtt_order_id=gtt_id
        )
        found = [self._from(r) for r in (response.data or []) if r.gtt_order_id == gtt_id]
        if not found:
            raise InvalidInput(f"GTT {gtt_id} is not on this Upstox account")
        return found[0]

    def _from(self, record: Any) -> UpstoxGttOrder:
        master = self.execution.masters.master
        token = str(record.instrument_token)
        key = master.key_of(token) if master is not None else token
        rule = (record.rules or [None])[0]
        if rule is None:
            raise InvalidInput(f"GTT {record.gtt_order_id} has no rule")
        exchange = master.instrument(key).exchange if master is not None else None
        product = (
            mapping.product_from_upstox(str(record.product), exchange)
            if exchange is not None
            else Product.MIS if record.product == "I" else Product.CNC
        )
        return UpstoxGttOrder(
            gtt_id=str(record.gtt_order_id),
            key=key,
            side=mapping.side_from_upstox(str(rule.transaction_type)),
            quantity=int(record.quantity),
            product=product,
            trigger=mapping.dec(rule.trigger_price),
            rising=rule.trigger_type == "ABOVE",
            status=str(rule.status or ""),
            order_id=str(rule.order_id) if rule.order_id else None,
            created_at=_millis(record.created_at),
            expires_at=_millis(record.expires_at),
        )


# Upstox's words for a rule's state, as the terminal's GTT states.
_STATUS = {
    "SCHEDULED": GttStatus.ACTIVE,
    "PENDING": GttStatus.ACTIVE,
    "OPEN": GttStatus.ACTIVE,
    "TRIGGERED": GttStatus.TRIGGERED,
    "COMPLETED": GttStatus.TRIGGERED,
    "CANCELLED": GttStatus.CANCELLED,
    "EXPIRED": GttStatus.EXPIRED,
    "FAILED": GttStatus.FAILED,
    "REJECTED": GttStatus.FAILED,
}


def gtt_from_upstox(record: UpstoxGttOrder) -> Gtt:
    """Upstox's GTT as the terminal's ``Gtt``: one leg whose order is a market order."""
    order = OrderRequest(
        key=record.key,
        side=record.side,
        quantity=record.quantity,
        order_type=OrderType.MARKET,
        product=record.product,
        source="gtt",
    )
    status = _STATUS.get(record.status.upper(), GttStatus.ACTIVE)
    fired = 0 if status in (GttStatus.TRIGGERED, GttStatus.FAILED) else None
    return Gtt(
        gtt_id=record.gtt_id,
        key=record.key,
        kind=GttKind.SINGLE,
        legs=(GttLeg(record.trigger, order, record.rising),),
        created_at=record.created_at or datetime.fromtimestamp(0, IST),
        status=status,
        fired_leg=fired,
        order_id=record.order_id,
        message=f"order {record.order_id}" if record.order_id else record.status,
    )


class UpstoxGttVenue:
    """The ``GttVenue`` port on ``UpstoxGtt``: single triggers only (see the module)."""

    title = "Upstox"
    oco = False

    def __init__(self, gtt: UpstoxGtt) -> None:
        self.gtt = gtt

    async def place_single(
        self, trigger: Decimal, order: OrderRequest, last_price: Decimal
    ) -> Gtt:
        if trigger == last_price:
            raise InvalidInput(f"trigger {trigger} equals the last price: it would fire at once")
        placed = await self.gtt.place_single(trigger, order, rising=trigger > last_price)
        return gtt_from_upstox(placed)

    async def place_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
        last_price: Decimal,
    ) -> Gtt:
        refusal = NotOffered(
            "Upstox's GTT has no OCO on a held position (its multi-leg GTT brackets a new "
            "entry): place the stop and the target as two single GTTs"
        )
        refusal.coded("upstox")
        raise refusal

    async def modify(
        self, gtt_id: int | str, changes: list[LegChange], last_price: Decimal
    ) -> Gtt:
        current = gtt_from_upstox(await self.gtt.gtt(str(gtt_id)))
        (leg,) = changed_legs(current, changes, last_price)  # Upstox's are single
        moved = await self.gtt.modify_single(str(gtt_id), leg.trigger, leg.order,
                                             rising=leg.rising)  # fmt: skip
        return gtt_from_upstox(moved)

    async def cancel(self, gtt_id: int | str) -> Gtt:
        return gtt_from_upstox(await self.gtt.cancel(str(gtt_id)))

    async def gtts(self) -> list[Gtt]:
        return [gtt_from_upstox(r) for r in await self.gtt.gtts()]


__all__ = ["UpstoxGtt", "UpstoxGttOrder", "UpstoxGttVenue", "gtt_from_upstox"]
