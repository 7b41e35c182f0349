"""Upstox's order words and JSON records translated to the terminal's vocabulary and back.

Every table is closed: a domain value Upstox cannot express (validity TTL) is refused before
anything is sent, and an Upstox value the terminal does not know (a new product code) is an
error naming the value, never a silent guess. The one deliberate many-to-one is the product:
Upstox has a single "D" (delivery) for what the terminal calls CNC on the cash segments and
NRML on derivatives, so "D" reads back by segment.

Upstox sends prices as JSON numbers (binary floats); they become ``Decimal`` through their
shortest ``repr`` so ``2450.05`` stays ``2450.05``. Its timestamps are IST wall-clock strings.

An order above the exchange's freeze quantity is sent with ``slice=true`` and Upstox splits
it into several orders that all carry our tag. The terminal keeps it as **one** order: the
first Upstox order id is its id, ``broker_order_id`` lists every slice's id, and its state
is the sum of its slices (``aggregate``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.clock import IST
from services.domain import (
    PAISA,
    ZERO,
    Exchange,
    Fill,
    Holding,
    MarketProtection,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Validity,
)

log = logging.getLogger(__name__)

Json = Mapping[str, Any]

ORDER_TYPE_TO_UPSTOX: dict[OrderType, str] = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.SL: "SL",
    OrderType.SL_M: "SL-M",
}
ORDER_TYPE_FROM_UPSTOX = {v: k for k, v in ORDER_TYPE_TO_UPSTOX.items()}

PRODUCT_TO_UPSTOX: dict[Product, str] = {
    Product.MIS: "I",  # intraday
    Product.CNC: "D",  # delivery, cash segments
    Product.NRML: "D",  # carry-forward, derivatives: Upstox calls it delivery too
}
# MTF (margin trading facility) is delivery on borrowed money; CO and OCO are intraday
# bracket products. The terminal cannot place them but must read them in a snapshot.
_PRODUCT_FROM_UPSTOX = {"I": Product.MIS, "MTF": Product.CNC, "CO": Product.MIS, "OCO": Product.MIS}

VALIDITY_TO_UPSTOX: dict[Validity, str] = {Validity.DAY: "DAY", Validity.IOC: "IOC"}
VALIDITY_FROM_UPSTOX = {v: k for k, v in VALIDITY_TO_UPSTOX.items()}

SIDE_TO_UPSTOX: dict[Side, str] = {Side.BUY: "BUY", Side.SELL: "SELL"}
SIDE_FROM_UPSTOX = {v: k for k, v in SIDE_TO_UPSTOX.items()}

# Upstox order statuses (lower case on the wire). The "... pending"/"... received" ones are
# the OMS at work; once an order is live a modify or cancel in flight leaves it OPEN.
STATUS_FROM_UPSTOX: dict[str, OrderStatus] = {
    "put order req received": OrderStatus.PENDING,
    "validation pending": OrderStatus.PENDING,
    "open pending": OrderStatus.PENDING,
    "after market order req received": OrderStatus.OPEN,  # queued for the next session
    "trigger pending": OrderStatus.TRIGGER_PENDING,
    "open": OrderStatus.OPEN,
    "modify validation pending": OrderStatus.OPEN,
    "modify pending": OrderStatus.OPEN,
    "modified": OrderStatus.OPEN,
    "not modified": OrderStatus.OPEN,
    "cancel pending": OrderStatus.OPEN,
    "not cancelled": OrderStatus.OPEN,
    "complete": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "cancelled after market order": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}

_CASH = frozenset({Exchange.NSE, Exchange.BSE})


class MappingError(ValueError):
    """A value one side cannot express in the other's vocabulary."""


def dec(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def money(value: Any) -> Decimal:
    return dec(value).quantize(PAISA)


def number(value: Decimal) -> float:
    """A price for the SDK's float fields (its shortest repr is the price's digits)."""
    return float(value)


def parse_ts(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


def product_to_upstox(product: Product) -> str:
    try:
        return PRODUCT_TO_UPSTOX[product]
    except KeyError:
        raise MappingError(f"Upstox has no product for {product.value}") from None


def product_from_upstox(word: str, exchange: Exchange) -> Product:
    if word == "D":
        return Product.CNC if exchange in _CASH else Product.NRML
    try:
        return _PRODUCT_FROM_UPSTOX[word]
    except KeyError:
        raise MappingError(f"unknown Upstox product {word!r}") from None


def validity_to_upstox(validity: Validity) -> str:
    try:
        return VALIDITY_TO_UPSTOX[validity]
    except KeyError:
        raise MappingError(
            f"Upstox accepts validity DAY or IOC only, not {validity.value}"
        ) from None


def validity_from_upstox(word: str) -> Validity:
    try:
        return VALIDITY_FROM_UPSTOX[word or "DAY"]
    except KeyError:
        raise MappingError(f"unknown Upstox validity {word!r}") from None


def order_type_from_upstox(word: str) -> OrderType:
    try:
        return ORDER_TYPE_FROM_UPSTOX[word]
    except KeyError:
        raise MappingError(f"unknown Upstox order type {word!r}") from None


def side_from_upstox(word: str) -> Side:
    try:
        return SIDE_FROM_UPSTOX[word]
    except KeyError:
        raise MappingError(f"unknown Upstox transaction type {word!r}") from None


def status_from_upstox(word: str, filled: int) -> OrderStatus:
    status = STATUS_FROM_UPSTOX.get(word.strip().lower())
    if status is None:
        raise MappingError(f"unknown Upstox order status {word!r}")
    if status in (OrderStatus.OPEN, OrderStatus.TRIGGER_PENDING) and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def market_protection(value: MarketProtection | None) -> float:
    """Upstox's ``market_protection``: -1 (automatic) when unset, else up to 25 percent."""
    if value is None or value.percent is None:
        return -1.0
    if value.percent > 25:
        raise MappingError(
            f"market protection must be between 0 and 25 % at Upstox, not {value.percent} %"
        )
    return float(value.percent)


def place_body(
    request: OrderRequest, *, instrument_key: str, tag: str, slice_: bool
) -> dict[str, Any]:
    """The fields of ``PlaceOrderV3Request`` for ``request`` (all that the SDK requires)."""
    order_type = request.order_type
    if order_type.needs_price and request.price is None:
        raise MappingError(f"a {order_type.value} order needs a price")
    if order_type.needs_trigger and request.trigger_price is None:
        raise MappingError(f"a {order_type.value} order needs a trigger price")
    body: dict[str, Any] = {
        "quantity": request.quantity,
        "product": product_to_upstox(request.product),
        "validity": validity_to_upstox(request.validity),
        "price": number(request.price) if order_type.needs_price and request.price else 0.0,
        "tag": tag,
        "slice": slice_,
        "instrument_token": instrument_key,
        "order_type": ORDER_TYPE_TO_UPSTOX[order_type],
        "transaction_type": SIDE_TO_UPSTOX[request.side],
        "disclosed_quantity": 0,
        "trigger_price": (
            number(request.trigger_price)
            if order_type.needs_trigger and request.trigger_price
            else 0.0
        ),
        "is_amo": request.amo,
    }
    if order_type in (OrderType.MARKET, OrderType.SL_M):
        body["market_protection"] = market_protection(request.market_protection)
    return body


def _optional_price(value: Any) -> Decimal | None:
    price = dec(value)
    return price if price != 0 else None


def order_from_upstox(record: Json, key: str, exchange: Exchange) -> Order:
    """One ``OrderBookData`` (order book, order details, a portfolio-stream update)."""
    filled = int(record.get("filled_quantity") or 0)
    placed = parse_ts(record.get("order_timestamp")) or datetime.now(IST)
    updated = parse_ts(record.get("exchange_timestamp")) or placed
    order_type = order_type_from_upstox(str(record["order_type"]))
    request = OrderRequest(
        key=key,
        side=side_from_upstox(str(record["transaction_type"])),
        quantity=int(record["quantity"]),
        order_type=order_type,
        product=product_from_upstox(str(record["product"]), exchange),
        validity=validity_from_upstox(str(record.get("validity") or "DAY")),
        price=_optional_price(record.get("price")) if order_type.needs_price else None,
        trigger_price=(
            _optional_price(record.get("trigger_price")) if order_type.needs_trigger else None
        ),
        tag=record.get("tag") or None,
        source="broker",
        amo=bool(record.get("is_amo")),
    )
    order_id = str(record["order_id"])
    return Order(
        order_id=order_id,
        request=request,
        status=status_from_upstox(str(record["status"]), filled),
        placed_at=placed,
        updated_at=max(updated, placed),
        filled_quantity=filled,
        average_price=dec(record.get("average_price")),
        status_message=str(record.get("status_message") or ""),
        broker_order_id=order_id,
    )


def aggregate(slices: list[Order]) -> Order:
    """One order from the slices Upstox made of it (ordered by order id, first is the parent)."""
    if len(slices) == 1:
        return slices[0]
    slices = sorted(slices, key=lambda o: o.order_id)
    first = slices[0]
    quantity = sum(o.quantity for o in slices)
    filled = sum(o.filled_quantity for o in slices)
    value = sum((o.average_price * o.filled_quantity for o in slices), ZERO)
    average = (value / filled) if filled else ZERO
    statuses = {o.status for o in slices}
    working = [o.status for o in slices if o.status.is_working]
    if working:
        if filled:
            status = OrderStatus.PARTIALLY_FILLED
        elif OrderStatus.OPEN in working:
            status = OrderStatus.OPEN
        elif OrderStatus.TRIGGER_PENDING in working:
            status = OrderStatus.TRIGGER_PENDING
        else:
            status = OrderStatus.PENDING
    elif filled == quantity:
        status = OrderStatus.FILLED
    elif statuses == {OrderStatus.REJECTED}:
        status = OrderStatus.REJECTED
    else:
        status = OrderStatus.CANCELLED
    messages = sorted({o.status_message for o in slices if o.status_message})
    return replace(
        first,
        request=replace(first.request, quantity=quantity),
        status=status,
        updated_at=max(o.updated_at for o in slices),
        filled_quantity=filled,
        average_price=average,
        status_message="; ".join(messages),
        broker_order_id=",".join(o.order_id for o in slices),
    )


def group_slices(orders: Iterable[Order]) -> list[Order]:
    """Fold the order book's slices (same tag) into one order each, in book order."""
    groups: dict[str, list[Order]] = {}
    for order in orders:
        tag = order.request.tag
        group_key = f"tag:{tag}" if tag else f"id:{order.order_id}"
        groups.setdefault(group_key, []).append(order)
    return [aggregate(group) for group in groups.values()]


def fill_from_upstox(record: Json, key: str, exchange: Exchange, product: Product) -> Fill:
    return Fill(
        fill_id=str(record["trade_id"]),
        order_id=str(record["order_id"]),
        key=key,
        side=side_from_upstox(str(record["transaction_type"])),
        product=product,
        quantity=int(record["quantity"]),
        price=dec(record.get("average_price")),
        ts=parse_ts(record.get("exchange_timestamp") or record.get("order_timestamp"))
        or datetime.now(IST),
    )


def position_from_upstox(record: Json, key: str, exchange: Exchange) -> Position:
    buy_qty = int(record.get("day_buy_quantity") or 0) + int(
        record.get("overnight_buy_quantity") or 0
    )
    sell_qty = int(record.get("day_sell_quantity") or 0) + int(
        record.get("overnight_sell_quantity") or 0
    )
    return Position(
        key=key,
        product=product_from_upstox(str(record["product"]), exchange),
        quantity=int(record.get("quantity") or 0),
        average_price=dec(record.get("average_price")),
        realised_pnl=money(record.get("realised")),
        last_price=dec(record.get("last_price")),
        buy_quantity=buy_qty,
        sell_quantity=sell_qty,
        multiplier=int(dec(record.get("multiplier") or 1)),
    )


def holding_from_upstox(record: Json, key: str) -> Holding:
    return Holding(
        key=key,
        quantity=int(record.get("quantity") or 0),
        average_price=dec(record.get("average_price")),
        last_price=dec(record.get("last_price")),
    )
