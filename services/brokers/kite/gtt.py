"""``KiteGtt``: GTTs held at Zerodha (``/gtt/triggers``), single and two-leg OCO.

Kite keeps a GTT on its own servers for a year: it fires when the terminal is closed, which
the terminal's own book (``services/gtt.py``) cannot. Calls go through the official SDK
(``place_gtt``, ``get_gtts``, ``get_gtt``, ``delete_gtt``, ``modify_gtt``) in the execution
client's worker threads, with its error mapping.

What is mapped, and what is refused before anything is sent:

* ``single``: one trigger and its order; Kite decides the direction from the trigger and the
  last price sent with it (``condition.last_price``), as the terminal's book does;
* ``two-leg`` (OCO): ``trigger_values`` are [stop, target], the stop below the last price
  and the target above, with one order each; leg 0 is the stop, as in the terminal's book;
* the order a GTT places is a LIMIT day order (Kite's GTT carries a price; a MARKET, SL or
  SL-M order, or IOC/TTL validity, is refused); products CNC, MIS and NRML.

The SDK writes prices as JSON numbers (it calls ``float`` on them); a price on the tick grid
survives that exactly, and everything read back is turned into ``Decimal`` from its text.
GTT requests are not orders: they do not count against the order throttle's day cap.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.brokers.errors import DataError, InvalidInput
from services.brokers.kite import mapping
from services.clock import IST
from services.domain import OrderRequest, OrderType, Product, Side, Validity
from services.gtt import Gtt, GttKind, GttLeg, GttStatus, LegChange, changed_legs

if TYPE_CHECKING:
    from services.brokers.kite.execution import KiteBroker

SINGLE = "single"
TWO_LEG = "two-leg"
# Kite's GTT statuses (the SDK's GTT_STATUS_*); "disabled" and "deleted" are both gone.
_STATUS = {
    "active": GttStatus.ACTIVE,
    "triggered": GttStatus.TRIGGERED,
    "disabled": GttStatus.CANCELLED,
    "cancelled": GttStatus.CANCELLED,
    "deleted": GttStatus.CANCELLED,
    "expired": GttStatus.EXPIRED,
    "rejected": GttStatus.FAILED,
}
_PRODUCTS = (Product.CNC, Product.MIS, Product.NRML)


def _created(value: Any) -> datetime:
    parsed = mapping.parse_ts(value)
    return parsed if parsed is not None else datetime.fromtimestamp(0, IST)


class KiteGtt:
    """The ``GttVenue`` port on Kite Connect's GTT API."""

    title = "Zerodha"
    oco = True

    def __init__(self, broker: KiteBroker) -> None:
        self._broker = broker

    @property
    def _kite(self) -> Any:
        return self._broker._kite

    # -- requests ---------------------------------------------------------------------------

    @staticmethod
    def _leg(order: OrderRequest) -> dict[str, Any]:
        if order.order_type is not OrderType.LIMIT or order.price is None:
            raise InvalidInput(
                f"a Kite GTT places a LIMIT order with its price; a {order.order_type.value}"
                " order cannot be carried"
            )
        if order.validity is not Validity.DAY:
            raise InvalidInput(
                f"a Kite GTT's order is a day order; {order.validity.value} is not offered"
            )
        if order.product not in _PRODUCTS:
            raise InvalidInput(f"a Kite GTT takes CNC, MIS or NRML, not {order.product.value}")
        if order.quantity <= 0 or order.price <= 0:
            raise InvalidInput("a GTT order needs a positive quantity and price")
        return {
            "transaction_type": order.side.value,
            "quantity": order.quantity,
            "order_type": order.order_type.value,
            "product": order.product.value,
            "price": order.price,  # the SDK sends float(price)
        }

    async def _send(
        self,
        action: str,
        kind: str,
        triggers: list[Decimal],
        orders: list[OrderRequest],
        last_price: Decimal,
        trigger_id: int | None = None,
    ) -> Gtt:
        key = orders[0].key
        if any(o.key != key for o in orders):
            raise InvalidInput("both legs of an OCO must be for the same instrument")
        if any(t <= 0 for t in triggers):
            raise InvalidInput("a GTT trigger must be a positive price")
        try:
            exchange, symbol = mapping.split_key(key)
        except mapping.MappingError as exc:
            raise InvalidInput(f"{action}: {exc}") from exc
        legs = [self._leg(o) for o in orders]
        values = [float(t) for t in triggers]
        last = float(last_price)
        if trigger_id is None:
            answer = await self._broker._call(
                action, self._kite.place_gtt, kind, symbol, exchange, values, last, legs
            )
        else:
            answer = await self._broker._call(
                action, self._kite.modify_gtt, trigger_id, kind, symbol, exchange, values,
                last, legs,
            )  # fmt: skip
        try:
            new_id = int(answer["trigger_id"])
        except (KeyError, TypeError, ValueError):
            raise InvalidInput(f"{action}: Kite answered without a trigger id") from None
        return await self.gtt(new_id)

    async def place_single(
        self, trigger: Decimal, order: OrderRequest, last_price: Decimal
    ) -> Gtt:
        return await self._send("place GTT", SINGLE, [trigger], [order], last_price)

    async def place_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
        last_price: Decimal,
    ) -> Gtt:
        if not stop_trigger < last_price < target_trigger:
            raise InvalidInput(
                f"an OCO needs its stop below and its target above the last price {last_price}"
                f" (stop {stop_trigger}, target {target_trigger})"
            )
        return await self._send(
            "place GTT", TWO_LEG, [stop_trigger, target_trigger], [stop_order, target_order],
            last_price,
        )  # fmt: skip

    async def modify(
        self, gtt_id: int | str, changes: list[LegChange], last_price: Decimal
    ) -> Gtt:
        """Move an active GTT's triggers and limit prices in place (same id, same kind)."""
        gtt = await self.gtt(gtt_id)
        legs = changed_legs(gtt, changes, last_price)
        kind = TWO_LEG if gtt.kind is GttKind.OCO else SINGLE
        return await self._send(
            f"modify GTT {gtt.gtt_id}", kind, [leg.trigger for leg in legs],
            [leg.order for leg in legs], last_price, trigger_id=self._id(gtt.gtt_id),
        )  # fmt: skip

    async def cancel(self, gtt_id: int | str) -> Gtt:
        trigger_id = self._id(gtt_id)
        await self._broker._call(f"cancel GTT {trigger_id}", self._kite.delete_gtt, trigger_id)
        return await self.gtt(trigger_id)

    async def gtts(self) -> list[Gtt]:
        records = await self._broker._call("read GTTs", self._kite.get_gtts)
        return [gtt_from_kite(r) for r in records or []]

    async def gtt(self, gtt_id: int | str) -> Gtt:
        record = await self._broker._call(
            f"read GTT {gtt_id}", self._kite.get_gtt, self._id(gtt_id)
        )
        return gtt_from_kite(record)

    @staticmethod
    def _id(gtt_id: int | str) -> int:
        try:
            return int(gtt_id)
        except ValueError:
            raise InvalidInput(f"{gtt_id!r} is not a Kite GTT id") from None


def gtt_from_kite(record: dict[str, Any]) -> Gtt:
    """One record of ``/gtt/triggers`` as the terminal's ``Gtt``."""
    try:
        condition = record["condition"]
        key = f"{condition['exchange']}:{condition['tradingsymbol']}"
        kind = GttKind.OCO if record["type"] == TWO_LEG else GttKind.SINGLE
        last = mapping.dec(condition.get("last_price") or 0)
        legs: list[GttLeg] = []
        fired: int | None = None
        order_id: str | None = None
        message = ""
        for n, (value, order) in enumerate(
            zip(condition["trigger_values"], record["orders"], strict=True)
        ):
            trigger = mapping.dec(value)
            rising = n == 1 if kind is GttKind.OCO else trigger > last
            request = OrderRequest(
                key=key,
                side=Side(order["transaction_type"]),
                quantity=int(order["quantity"]),
                order_type=OrderType(order["order_type"]),
                product=mapping.product_from_kite(str(order["product"])),
                price=mapping.dec(order["price"]),
                source="gtt",
            )
            legs.append(GttLeg(trigger, request, rising))
            result = order.get("result")
            if result and fired is None:
                fired = n
                outcome = result.get("order_result") or {}
                order_id = str(outcome.get("order_id") or "") or None
                message = str(outcome.get("rejection_reason") or "")
                if outcome.get("status") == "failed" and not message:
                    message = "Kite could not place the order"
        status = _STATUS.get(str(record["status"]), GttStatus.ACTIVE)
        if fired is not None and order_id is None and status is GttStatus.TRIGGERED:
            status = GttStatus.FAILED  # fired, but Kite's order was refused
        return Gtt(
            gtt_id=int(record["id"]),
            key=key,
            kind=kind,
            legs=tuple(legs),
            created_at=_created(record.get("created_at")),
            status=status,
            fired_leg=fired,
            order_id=order_id,
            message=message or (f"order {order_id}" if order_id else ""),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise DataError(f"Kite's GTT record could not be read ({exc})") from exc


__all__ = ["KiteGtt", "gtt_from_kite"]
