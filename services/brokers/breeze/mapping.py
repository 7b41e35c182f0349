"""Breeze's words and records translated to the terminal's vocabulary and back.

Going out, every domain value has exactly one Breeze word or is refused with the reason: a
value Breeze does not offer is never replaced by a near one. What Breeze offers and the
terminal sends:

==========  ===================================================================
domain      Breeze
==========  ===================================================================
side        BUY -> ``buy``, SELL -> ``sell``
type        LIMIT -> ``limit``; SL -> ``stoploss`` (trigger in ``stoploss``, limit in
            ``price``); MARKET -> ``limit`` at the aggressive price (``aggressive_limit``),
            as the SDK itself does, but in Decimal and on the instrument's own tick;
            SL-M is refused (Breeze has no stop-loss-market order)
product     CNC on NSE/BSE -> ``cash``; NRML on NFO/BFO -> ``futures`` / ``options``;
            MIS is refused (Breeze's intraday ``margin`` product is closed to API
            orders) and so is every other pairing
validity    DAY -> ``day``, IOC -> ``ioc``; TTL is refused
AMO         refused: the API has no after-market flag
==========  ===================================================================

Coming in (the order book, trades, positions), Breeze's words are mapped by tables; a word
not in a table is an error naming it, never a guess. ``BTST`` and ``MTF`` are delivery
products bought with borrowed time or money, shown as CNC; ``VTC`` (valid till cancelled) is
shown as DAY. Breeze's times are IST wall-clock text; money is text or JSON numbers, turned
into ``Decimal`` through their text.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

from services.brokers.breeze.config import AGGRESSIVE_MIN_GAP, AGGRESSIVE_PERCENT
from services.brokers.breeze.instruments import BreezeContract, SecurityMaster
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

Json = Mapping[str, Any]


class MappingError(ValueError):
    """A value with no Breeze (or domain) counterpart; the message says which and why."""


_SIDE_OUT = {Side.BUY: "buy", Side.SELL: "sell"}
_VALIDITY_OUT = {Validity.DAY: "day", Validity.IOC: "ioc"}
_CASH_EXCHANGES = (Exchange.NSE, Exchange.BSE)

STATUS: dict[str, OrderStatus] = {
    "requested": OrderStatus.PENDING,
    "queued": OrderStatus.PENDING,
    "ordered": OrderStatus.OPEN,
    "partially executed": OrderStatus.PARTIALLY_FILLED,
    "executed": OrderStatus.FILLED,
    "cancelled": OrderStatus.CANCELLED,
    "expired": OrderStatus.CANCELLED,
    "partially executed and expired": OrderStatus.CANCELLED,
    "partially executed and cancelled": OrderStatus.CANCELLED,
    "rejected": OrderStatus.REJECTED,
    "freezed": OrderStatus.PENDING,  # held by ICICI's risk system before the exchange
}
_SIDE_IN = {"buy": Side.BUY, "sell": Side.SELL}
_TYPE_IN = {"limit": OrderType.LIMIT, "market": OrderType.MARKET, "stoploss": OrderType.SL}
_PRODUCT_IN = {
    "cash": Product.CNC,
    "btst": Product.CNC,
    "mtf": Product.CNC,
    "delivery": Product.CNC,
    "margin": Product.MIS,
    "futures": Product.NRML,
    "options": Product.NRML,
}
_VALIDITY_IN = {"day": Validity.DAY, "ioc": Validity.IOC, "vtc": Validity.DAY}


def dec(value: Any) -> Decimal:
    if value is None or value == "":
        return ZERO
    if isinstance(value, float):
        return Decimal(repr(value))
    try:
        return Decimal(str(value).strip())
    except InvalidOperation as exc:
        raise MappingError(f"{value!r} is not a number") from exc


def whole(value: Any) -> int:
    number = dec(value)
    if number != number.to_integral_value():
        raise MappingError(f"{value!r} is not a whole quantity")
    return int(number)


def _word(table: Mapping[str, Any], value: Any, what: str) -> Any:
    word = str(value or "").strip().lower()
    if word not in table:
        raise MappingError(f"Breeze {what} {value!r} is not one the terminal knows")
    return table[word]


def parse_time(text: Any) -> datetime | None:
    """Breeze's IST wall-clock text (several layouts) as an aware datetime."""
    if not text:
        return None
    value = str(text).strip()
    for layout in (
        "%d-%b-%Y %H:%M:%S",
        "%d-%b-%Y %H:%M",
        "%Y-%m-%d %H:%M:%S",
        "%d-%b-%Y",
        "%Y-%m-%dT%H:%M:%S",
    ):
        try:
            return datetime.strptime(value, layout).replace(tzinfo=IST)
        except ValueError:
            continue
    raise MappingError(f"Breeze time {value!r} is in no known layout")


def parse_date(text: Any) -> date | None:
    stamp = parse_time(str(text)[:19]) if text else None
    return stamp.date() if stamp else None


def breeze_product(request: OrderRequest, contract: BreezeContract) -> str:
    exchange = contract.instrument.exchange
    if contract.product == "cash":
        if request.product is Product.CNC:
            return "cash"
        if request.product is Product.MIS:
            raise MappingError(
                "Breeze does not take intraday (MIS) equity orders from the API: its "
                "margin product is closed to API orders; use CNC"
            )
        raise MappingError(f"{request.product.value} is not a product for {exchange} equity")
    if request.product is Product.NRML:
        return contract.product
    raise MappingError(
        f"Breeze takes {exchange} futures and options as NRML only "
        f"({request.product.value} would not be squared off for you)"
    )


def order_params(
    request: OrderRequest, contract: BreezeContract, *, tag: str, price: Decimal | None = None
) -> dict[str, str]:
    """The keyword arguments of ``BreezeConnect.place_order`` for ``request``.

    ``price`` is the aggressive limit computed for a MARKET order (``aggressive_limit``).
    """
    if request.amo:
        raise MappingError("Breeze's API has no after-market order flag; place it in session")
    if request.validity not in _VALIDITY_OUT:
        raise MappingError(f"Breeze has no {request.validity.value} validity (DAY or IOC)")
    params: dict[str, str] = {
        "stock_code": contract.stock_code,
        "exchange_code": contract.exchange_code,
        "product": breeze_product(request, contract),
        "action": _SIDE_OUT[request.side],
        "quantity": str(request.quantity),
        "validity": _VALIDITY_OUT[request.validity],
        "user_remark": tag,
    }
    if request.order_type is OrderType.LIMIT:
        if request.price is None:
            raise MappingError("a LIMIT order needs a price")
        params.update(order_type="limit", price=_plain(request.price))
    elif request.order_type is OrderType.SL:
        if request.price is None or request.trigger_price is None:
            raise MappingError("an SL order needs a limit price and a trigger price")
        params.update(
            order_type="stoploss",
            price=_plain(request.price),
            stoploss=_plain(request.trigger_price),
        )
    elif request.order_type is OrderType.MARKET:
        if price is None:
            raise MappingError("a MARKET order needs its aggressive limit price")
        params.update(order_type="limit", price=_plain(price))
    else:
        raise MappingError("Breeze has no stop-loss-market (SL-M) order; use SL with a limit price")
    if contract.product != "cash":
        params.update(
            expiry_date=contract.expiry_param,
            right=contract.right,
            strike_price=contract.strike_param or "0",
        )
    return params


def _plain(value: Decimal) -> str:
    return format(value, "f")


def aggressive_limit(
    side: Side,
    contract: BreezeContract,
    last: Decimal,
    lower: Decimal,
    upper: Decimal,
    percent: Decimal | None = None,
) -> Decimal:
    """Breeze's rule for a market order, exactly: a limit ``percent`` beyond the last price
    (3 % cash, 1.5 % futures, 10 % options unless the request's market protection says
    otherwise), at least the minimum gap (0.05 cash and futures, 5 points options), inside
    the circuit band, rounded *towards the market* onto the instrument's tick."""
    product = contract.product
    pct = percent if percent is not None else AGGRESSIVE_PERCENT[product]
    gap = max(last * pct / 100, AGGRESSIVE_MIN_GAP[product])
    raw = last + gap if side is Side.BUY else last - gap
    if upper > 0:
        raw = min(raw, upper)
    if lower > 0:
        raw = max(raw, lower)
    tick = contract.instrument.tick_size
    towards_market = ROUND_FLOOR if side is Side.BUY else ROUND_CEILING
    steps = (raw / tick).to_integral_value(rounding=towards_market)
    price = (steps * tick).quantize(tick)
    if price <= 0:
        raise MappingError(f"no valid aggressive price below {last} for a sell")
    return price


def _contract_key(master: SecurityMaster, record: Json) -> str:
    exchange = str(record.get("exchange_code") or "").upper()
    code = str(record.get("stock_code") or "")
    if exchange in ("NSE", "BSE"):
        key = master.key_for(exchange, code)
    else:
        expiry = parse_date(record.get("expiry_date"))
        right = str(record.get("right") or "others").lower()
        strike = dec(record.get("strike_price")) if right in ("call", "put") else None
        key = master.key_for(exchange, code, expiry, strike, right)
    if key is None:
        raise MappingError(f"{exchange} {code} is not in today's ICICI security master")
    return key


def order_from_breeze(record: Json, master: SecurityMaster, source: str = "broker") -> Order:
    key = _contract_key(master, record)
    status = _word(STATUS, record.get("status"), "order status")
    order_type = _word(_TYPE_IN, record.get("order_type"), "order type")
    quantity = whole(record.get("quantity"))
    pending = whole(record.get("pending_quantity"))
    cancelled = whole(record.get("cancelled_quantity"))
    filled = max(0, quantity - pending - cancelled)
    if status is OrderStatus.OPEN and order_type is OrderType.SL:
        status = OrderStatus.TRIGGER_PENDING
    if status is OrderStatus.OPEN and filled:
        status = OrderStatus.PARTIALLY_FILLED
    price = dec(record.get("price"))
    trigger = dec(record.get("stoploss"))
    placed = parse_time(record.get("order_datetime")) or datetime.now(IST)
    request = OrderRequest(
        key=key,
        side=_word(_SIDE_IN, record.get("action"), "action"),
        quantity=quantity,
        order_type=order_type,
        product=_word(_PRODUCT_IN, record.get("product_type"), "product"),
        validity=_word(_VALIDITY_IN, record.get("validity"), "validity"),
        price=price if order_type is not OrderType.MARKET and price else None,
        trigger_price=trigger if order_type is OrderType.SL and trigger else None,
        tag=str(record.get("user_remark") or "") or None,
        source=source,
    )
    order_id = str(record["order_id"])
    return Order(
        order_id=order_id,
        request=request,
        status=status,
        placed_at=placed,
        updated_at=parse_time(record.get("exchange_acknowledgement_date")) or placed,
        filled_quantity=filled,
        average_price=dec(record.get("average_price")),
        status_message=str(record.get("status") or ""),
        broker_order_id=order_id,
    )


def fill_from_breeze(record: Json, master: SecurityMaster) -> Fill:
    quantity = whole(record.get("executed_quantity") or record.get("quantity"))
    price = dec(record.get("execution_price") or record.get("average_cost"))
    ts = parse_time(record.get("exchange_trade_time")) or parse_time(record.get("trade_date"))
    order_id = str(record.get("order_id") or "")
    trade_id = str(record.get("trade_id") or record.get("exchange_trade_id") or "")
    if not trade_id:
        raise MappingError(f"a Breeze trade of order {order_id} has no trade id")
    return Fill(
        fill_id=f"{order_id}-{trade_id}",
        order_id=order_id,
        key=_contract_key(master, record),
        side=_word(_SIDE_IN, record.get("action"), "action"),
        product=_word(_PRODUCT_IN, record.get("product_type"), "product"),
        quantity=quantity,
        price=price,
        ts=ts or datetime.now(IST),
    )


def position_from_breeze(record: Json, master: SecurityMaster) -> Position:
    key = _contract_key(master, record)
    quantity = whole(record.get("quantity"))
    if str(record.get("action") or "").lower() == "sell":
        quantity = -quantity
    return Position(
        key=key,
        product=_word(_PRODUCT_IN, record.get("product_type"), "product"),
        quantity=quantity,
        average_price=dec(record.get("average_price")),
        last_price=dec(record.get("ltp")),
    )


def holding_from_breeze(record: Json, master: SecurityMaster) -> Holding:
    return Holding(
        key=_contract_key(master, record),
        quantity=whole(record.get("quantity")),
        average_price=dec(record.get("average_price")),
        last_price=dec(record.get("current_market_price")),
    )


def funds_from_breeze(record: Json) -> Funds:
    total = dec(record.get("total_bank_balance"))
    blocked = dec(record.get("block_by_trade_balance")) or (
        dec(record.get("block_by_trade_equity")) + dec(record.get("block_by_trade_fno"))
    )
    return Funds(opening_balance=total, available_cash=total - blocked, margin_used=blocked)


def records(success: Any) -> list[Json]:
    """Breeze's ``Success`` as a list of records (it sends a list, one object, or null)."""
    if success is None:
        return []
    if isinstance(success, Mapping):
        return [success]
    if isinstance(success, list):
        return [r for r in success if isinstance(r, Mapping)]
    raise MappingError(f"Breeze sent {type(success).__name__} where records were expected")
