"""The terminal's order vocabulary translated to Angel One's and back, refusing the unknown.

Angel's words (research/wave2.md §1, SmartAPI order docs): ``variety`` NORMAL / STOPLOSS /
AMO / ROBO, ``ordertype`` MARKET / LIMIT / STOPLOSS_LIMIT / STOPLOSS_MARKET, ``producttype``
DELIVERY / CARRYFORWARD / MARGIN / INTRADAY / BO, ``duration`` DAY / IOC. A value outside
these tables is a bug or a change at Angel, and we say so instead of guessing: outgoing,
before anything is sent; incoming, for the one row that carries it.

Two Angel products have no exact twin here: MARGIN (margin-funded delivery) reads as CNC and
BO (bracket, always intraday) reads as MIS; we never send either.

Market orders: Angel turns every MARKET order into a limit within its own market price
protection band (0.5 % for cash equity, more for options). When the trader asks for a
protection of their own, the adapter sends a LIMIT at that distance from the last price
(``protected_limit``), which is exactly what Angel would do with its band.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from services.broker import OrderRejected
from services.brokers.angelone.config import MAX_TAG_LENGTH
from services.clock import IST
from services.domain import (
    ZERO,
    Exchange,
    Fill,
    Funds,
    Holding,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Validity,
)

VARIETIES = ("NORMAL", "STOPLOSS", "AMO", "ROBO")
ORDER_TYPES: dict[OrderType, str] = {
    OrderType.MARKET: "MARKET",
    OrderType.LIMIT: "LIMIT",
    OrderType.SL: "STOPLOSS_LIMIT",
    OrderType.SL_M: "STOPLOSS_MARKET",
}
ORDER_TYPES_IN: dict[str, OrderType] = {v: k for k, v in ORDER_TYPES.items()}
PRODUCTS: dict[Product, str] = {
    Product.CNC: "DELIVERY",
    Product.MIS: "INTRADAY",
    Product.NRML: "CARRYFORWARD",
}
PRODUCTS_IN: dict[str, Product] = {
    "DELIVERY": Product.CNC,
    "INTRADAY": Product.MIS,
    "CARRYFORWARD": Product.NRML,
    "MARGIN": Product.CNC,
    "BO": Product.MIS,
}
DURATIONS: dict[Validity, str] = {Validity.DAY: "DAY", Validity.IOC: "IOC"}
DURATIONS_IN: dict[str, Validity] = {v: k for k, v in DURATIONS.items()}
EXCHANGES = frozenset({"NSE", "BSE", "NFO", "BFO", "MCX", "CDS"})
SIDES = frozenset({"BUY", "SELL"})

# ``orderstatus`` values (lower case at Angel) to the terminal's states.
STATUSES: dict[str, OrderStatus] = {
    "open": OrderStatus.OPEN,
    "open pending": OrderStatus.OPEN,
    "validation pending": OrderStatus.OPEN,
    "put order req received": OrderStatus.OPEN,
    "modified": OrderStatus.OPEN,
    "modify pending": OrderStatus.OPEN,
    "modify validation pending": OrderStatus.OPEN,
    "cancel pending": OrderStatus.OPEN,
    "after market order req received": OrderStatus.OPEN,
    "amo req received": OrderStatus.OPEN,
    "trigger pending": OrderStatus.TRIGGER_PENDING,
    "complete": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
}
COMMODITY_EXCHANGES = frozenset({"MCX"})
TIME_FORMATS = ("%d-%b-%Y %H:%M:%S", "%d-%b-%Y %H:%M", "%Y-%m-%d %H:%M:%S")


class MappingError(ValueError):
    """An Angel value this adapter does not know; the message names the field and value."""


def _look(table: Mapping[Any, Any], value: Any, field: str) -> Any:
    try:
        return table[value]
    except KeyError:
        raise MappingError(f"Angel One {field} {value!r} is not one this terminal knows") from None


def variety_for(request: OrderRequest) -> str:
    if request.amo:
        return "AMO"
    if request.order_type.needs_trigger:
        return "STOPLOSS"
    return "NORMAL"


def _price(value: Decimal | None) -> str:
    return "0" if value is None else f"{value:f}"


def protected_limit(side: Side, reference: Decimal, percent: Decimal, tick: Decimal) -> Decimal:
    """A limit ``percent`` away from ``reference`` on the side that lets the order fill,
    rounded onto the tick grid toward the reference (never beyond the protection)."""
    if percent <= 0:
        raise OrderRejected("market protection must be a positive percentage", rule="input")
    distance = reference * percent / 100
    raw = reference + distance if side is Side.BUY else reference - distance
    steps = (raw / tick).to_integral_value(ROUND_FLOOR if side is Side.BUY else ROUND_CEILING)
    price = (steps * tick).quantize(tick)
    return max(price, tick)


def order_params(
    request: OrderRequest, tradingsymbol: str, symboltoken: str, exchange: str
) -> dict[str, str]:
    """``placeOrder`` parameters for a request; raises ``OrderRejected`` for what Angel lacks."""
    if exchange not in EXCHANGES:
        raise OrderRejected(f"Angel One does not trade on exchange {exchange!r}", rule="input")
    if request.validity not in DURATIONS:
        raise OrderRejected(
            f"Angel One has no {request.validity} validity; use DAY or IOC", rule="input"
        )
    if request.validity is Validity.IOC and exchange in COMMODITY_EXCHANGES:
        raise OrderRejected("Angel One does not accept IOC orders on commodities", rule="input")
    if request.order_type.needs_price and request.price is None:
        raise OrderRejected(f"a {request.order_type} order needs a price", rule="input")
    if request.order_type.needs_trigger and request.trigger_price is None:
        raise OrderRejected(f"a {request.order_type} order needs a trigger price", rule="input")
    tag = request.tag or ""
    if tag and (len(tag) > MAX_TAG_LENGTH or not tag.isalnum()):
        raise OrderRejected(
            f"order tag {tag!r} must be letters and digits, shorter than 20 characters",
            rule="input",
        )
    params = {
        "variety": variety_for(request),
        "tradingsymbol": tradingsymbol,
        "symboltoken": symboltoken,
        "transactiontype": request.side.value,
        "exchange": exchange,
        "ordertype": ORDER_TYPES[request.order_type],
        "producttype": _look(PRODUCTS, request.product, "product"),
        "duration": DURATIONS[request.validity],
        "price": _price(request.price if request.order_type.needs_price else None),
        "triggerprice": _price(request.trigger_price if request.order_type.needs_trigger else None),
        "squareoff": "0",
        "stoploss": "0",
        "quantity": str(request.quantity),
    }
    if tag:
        params["ordertag"] = tag
    return params


def _decimal(row: Mapping[str, Any], field: str) -> Decimal:
    value = row.get(field)
    if value in (None, ""):
        return ZERO
    try:
        return Decimal(str(value))
    except InvalidOperation:
        raise MappingError(f"Angel One {field} {value!r} is not a number") from None


def _int(row: Mapping[str, Any], field: str) -> int:
    value = row.get(field)
    if value in (None, ""):
        return 0
    try:
        return int(Decimal(str(value)))
    except InvalidOperation:
        raise MappingError(f"Angel One {field} {value!r} is not a whole number") from None


def parse_time(text: Any) -> datetime | None:
    if not text:
        return None
    for fmt in TIME_FORMATS:
        try:
            return datetime.strptime(str(text), fmt).replace(tzinfo=IST)
        except ValueError:
            continue
    raise MappingError(f"Angel One time {text!r} is in no format this terminal knows")


KeyOf = Callable[[str, str, str], str]


def order_from_angel(row: Mapping[str, Any], key_of: KeyOf, now: datetime) -> Order:
    """An order book (or order details) row as a terminal ``Order``."""
    status_text = str(row.get("orderstatus") or row.get("status") or "").lower()
    status = _look(STATUSES, status_text, "order status")
    exchange = _look({e: e for e in EXCHANGES}, row.get("exchange"), "exchange")
    side = Side(_look({s: s for s in SIDES}, row.get("transactiontype"), "transaction type"))
    variety = _look({v: v for v in VARIETIES}, row.get("variety"), "variety")
    order_type = _look(ORDER_TYPES_IN, row.get("ordertype"), "order type")
    filled = _int(row, "filledshares")
    quantity = _int(row, "quantity")
    if status is OrderStatus.OPEN and 0 < filled < quantity:
        status = OrderStatus.PARTIALLY_FILLED
    price = _decimal(row, "price")
    trigger = _decimal(row, "triggerprice")
    key = key_of(exchange, str(row.get("tradingsymbol") or ""), str(row.get("symboltoken") or ""))
    request = OrderRequest(
        key=key,
        side=side,
        quantity=quantity,
        order_type=order_type,
        product=_look(PRODUCTS_IN, row.get("producttype"), "product type"),
        validity=_look(DURATIONS_IN, row.get("duration"), "duration"),
        price=price if order_type.needs_price else None,
        trigger_price=trigger if order_type.needs_trigger else None,
        tag=str(row.get("ordertag") or "") or None,
        amo=variety == "AMO",
    )
    updated = parse_time(row.get("updatetime")) or now
    return Order(
        order_id=str(row.get("orderid")),
        request=request,
        status=status,
        placed_at=parse_time(row.get("exchtime")) or updated,
        updated_at=updated,
        filled_quantity=filled,
        average_price=_decimal(row, "averageprice"),
        status_message=str(row.get("text") or ""),
        broker_order_id=str(row.get("uniqueorderid") or "") or None,
    )


def fill_from_angel(row: Mapping[str, Any], key_of: KeyOf, day: datetime) -> Fill:
    """A trade book row; Angel gives only the time of day, so ``day`` supplies the date."""
    exchange = _look({e: e for e in EXCHANGES}, row.get("exchange"), "exchange")
    side = Side(_look({s: s for s in SIDES}, row.get("transactiontype"), "transaction type"))
    ts = day
    filltime = str(row.get("filltime") or "")
    if filltime:
        try:
            hh, mm, ss = (int(p) for p in filltime.split(":"))
            ts = day.replace(hour=hh, minute=mm, second=ss, microsecond=0)
        except ValueError:
            raise MappingError(f"Angel One fill time {filltime!r} is not HH:MM:SS") from None
    return Fill(
        fill_id=str(row.get("fillid")),
        order_id=str(row.get("orderid")),
        key=key_of(
            exchange, str(row.get("tradingsymbol") or ""), str(row.get("symboltoken") or "")
        ),
        side=side,
        product=_look(PRODUCTS_IN, row.get("producttype"), "product type"),
        quantity=_int(row, "fillsize"),
        price=_decimal(row, "fillprice"),
        ts=ts,
    )


def position_from_angel(row: Mapping[str, Any], key_of: KeyOf) -> Position:
    exchange = _look({e: e for e in EXCHANGES}, row.get("exchange"), "exchange")
    quantity = _int(row, "netqty")
    average = _decimal(row, "netprice") if quantity else ZERO
    return Position(
        key=key_of(
            exchange, str(row.get("tradingsymbol") or ""), str(row.get("symboltoken") or "")
        ),
        product=_look(PRODUCTS_IN, row.get("producttype"), "product type"),
        quantity=quantity,
        average_price=average,
        realised_pnl=_decimal(row, "realised"),
        last_price=_decimal(row, "ltp"),
        buy_quantity=_int(row, "buyqty"),
        sell_quantity=_int(row, "sellqty"),
        multiplier=max(1, _int(row, "multiplier")),
    )


def holding_from_angel(row: Mapping[str, Any], key_of: KeyOf) -> Holding:
    exchange = _look({e: e for e in EXCHANGES}, row.get("exchange"), "exchange")
    return Holding(
        key=key_of(
            exchange, str(row.get("tradingsymbol") or ""), str(row.get("symboltoken") or "")
        ),
        quantity=_int(row, "quantity"),
        average_price=_decimal(row, "averageprice"),
        last_price=_decimal(row, "ltp"),
    )


def funds_from_angel(data: Mapping[str, Any]) -> Funds:
    """``getRMS`` data: every figure arrives as a string of rupees."""
    net = _decimal(data, "net")
    cash = _decimal(data, "availablecash")
    return Funds(
        opening_balance=cash,
        available_cash=net,
        margin_used=_decimal(data, "utiliseddebits"),
        realised_pnl=_decimal(data, "m2mrealized"),
        unrealised_pnl=_decimal(data, "m2munrealized"),
    )


def exchange_of(key: str) -> Exchange:
    prefix = key.split(":", 1)[0]
    try:
        return Exchange(prefix)
    except ValueError:
        raise MappingError(f"{key!r} does not start with an exchange this terminal knows") from None
