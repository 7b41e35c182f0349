"""Kite's words and JSON shapes translated to the terminal's vocabulary and back.

Kite sends prices and money as JSON numbers (binary floats on the way in); we turn them into
``Decimal`` through their shortest ``repr`` so ``420.65`` stays ``420.65``, and round money
to the paisa (``99725.05000000002`` is float noise, not a price). Kite's timestamps are IST
wall-clock strings without a zone; the SDK turns some of them into naive datetimes; both
become IST-aware here.

Kite has a few words the terminal does not (products CO and MTF, varieties iceberg and
auction, intermediate statuses such as "MODIFY PENDING"): they are mapped to the nearest
domain word, documented beside each table, so that a snapshot never fails on them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal
from typing import Any

from services.clock import IST
from services.domain import (
    PAISA,
    ZERO,
    Bar,
    Depth,
    DepthLevel,
    Fill,
    Funds,
    Holding,
    MarketProtection,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Tick,
    Timeframe,
    Validity,
)

log = logging.getLogger(__name__)

Json = Mapping[str, Any]

VARIETY_REGULAR = "regular"
VARIETY_AMO = "amo"
MARKET_PROTECTION_AUTO = -1

# Kite's order statuses. The "... PENDING"/"... RECEIVED" ones are the OMS at work: before
# the exchange has the order they are PENDING; once an order is live at the exchange, a
# modify or cancel in progress leaves it OPEN until the exchange answers.
_STATUS: dict[str, OrderStatus] = {
    "PUT ORDER REQ RECEIVED": OrderStatus.PENDING,
    "VALIDATION PENDING": OrderStatus.PENDING,
    "OPEN PENDING": OrderStatus.PENDING,
    "AMO REQ RECEIVED": OrderStatus.OPEN,  # accepted, waits at Kite for the session to open
    "TRIGGER PENDING": OrderStatus.TRIGGER_PENDING,
    "OPEN": OrderStatus.OPEN,
    "MODIFY VALIDATION PENDING": OrderStatus.OPEN,
    "MODIFY PENDING": OrderStatus.OPEN,
    "MODIFIED": OrderStatus.OPEN,
    "CANCEL PENDING": OrderStatus.OPEN,
    "COMPLETE": OrderStatus.FILLED,
    "CANCELLED": OrderStatus.CANCELLED,
    "CANCELLED AMO": OrderStatus.CANCELLED,
    "REJECTED": OrderStatus.REJECTED,
}

# CO (cover order) is intraday and is squared off like MIS; MTF (margin trading facility) is
# delivery bought on borrowed money, closest to CNC. The terminal cannot place either.
_PRODUCT: dict[str, Product] = {
    "CNC": Product.CNC,
    "MIS": Product.MIS,
    "NRML": Product.NRML,
    "CO": Product.MIS,
    "MTF": Product.CNC,
}

_INTERVALS: dict[Timeframe, str] = {
    Timeframe.M1: "minute",
    Timeframe.M5: "5minute",
    Timeframe.M15: "15minute",
    Timeframe.M30: "30minute",
    Timeframe.H1: "60minute",
    Timeframe.D1: "day",
}


class MappingError(ValueError):
    """A Kite record that cannot be expressed in the terminal's vocabulary."""


def interval_for(timeframe: Timeframe) -> str:
    return _INTERVALS[timeframe]


def dec(value: Any) -> Decimal:
    """A price from Kite JSON as an exact ``Decimal`` (``None`` and "" become zero)."""
    if value is None or value == "":
        return ZERO
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return Decimal(repr(value))
    return Decimal(str(value))


def money(value: Any) -> Decimal:
    """An amount of rupees, rounded to the paisa."""
    return dec(value).quantize(PAISA)


def parse_ts(value: Any) -> datetime | None:
    """Kite time (IST wall clock string, naive or aware datetime) as an IST-aware datetime."""
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.replace(tzinfo=IST) if value.tzinfo is None else value.astimezone(IST)
    text = str(value).strip()
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        # "2017-12-15T09:15:00+0530" (historical candles) lacks the colon in the offset
        # that fromisoformat needs before Python 3.11's wider grammar covers it.
        parsed = datetime.strptime(text, "%Y-%m-%dT%H:%M:%S%z")
    return parsed.replace(tzinfo=IST) if parsed.tzinfo is None else parsed.astimezone(IST)


def key_of(record: Json) -> str:
    return f"{record['exchange']}:{record['tradingsymbol']}"


def split_key(key: str) -> tuple[str, str]:
    """``"NSE:INFY"`` -> ``("NSE", "INFY")``; the symbol may itself contain a colon-free dash."""
    exchange, sep, symbol = key.partition(":")
    if not sep or not exchange or not symbol:
        raise MappingError(f"instrument key {key!r} is not EXCHANGE:SYMBOL")
    return exchange, symbol


def product_from_kite(word: str) -> Product:
    try:
        return _PRODUCT[word]
    except KeyError:
        raise MappingError(f"unknown Kite product {word!r}") from None


def status_from_kite(word: str, filled: int) -> OrderStatus:
    status = _STATUS.get(word)
    if status is None:
        log.warning("unknown Kite order status %r, treated as PENDING", word)
        status = OrderStatus.PENDING
    if status in (OrderStatus.OPEN, OrderStatus.TRIGGER_PENDING) and filled > 0:
        return OrderStatus.PARTIALLY_FILLED
    return status


def _optional_price(value: Any) -> Decimal | None:
    price = dec(value)
    return price if price != 0 else None


def order_from_kite(record: Json) -> Order:
    """One entry of ``/orders`` or ``/orders/{id}`` (or a ticker order update)."""
    filled = int(record.get("filled_quantity") or 0)
    placed = parse_ts(record.get("order_timestamp")) or datetime.now(IST)
    updated = (
        parse_ts(record.get("exchange_update_timestamp"))
        or parse_ts(record.get("exchange_timestamp"))
        or placed
    )
    order_type = OrderType(record["order_type"])
    request = OrderRequest(
        key=key_of(record),
        side=Side(record["transaction_type"]),
        quantity=int(record["quantity"]),
        order_type=order_type,
        product=product_from_kite(record["product"]),
        validity=Validity(record.get("validity") or "DAY"),
        price=_optional_price(record.get("price")) if order_type.needs_price else None,
        trigger_price=(
            _optional_price(record.get("trigger_price")) if order_type.needs_trigger else None
        ),
        tag=record.get("tag") or None,
        source="broker",
        amo=record.get("variety") == VARIETY_AMO,
    )
    return Order(
        order_id=str(record["order_id"]),
        request=request,
        status=status_from_kite(str(record["status"]), filled),
        placed_at=placed,
        updated_at=max(updated, placed),
        filled_quantity=filled,
        average_price=dec(record.get("average_price")),
        status_message=str(record.get("status_message") or ""),
        broker_order_id=str(record["order_id"]),
    )


def variety_of(record: Json) -> str:
    return str(record.get("variety") or VARIETY_REGULAR)


def fill_from_kite(record: Json) -> Fill:
    """One entry of ``/trades`` or ``/orders/{id}/trades``."""
    ts = (
        parse_ts(record.get("fill_timestamp"))
        or parse_ts(record.get("exchange_timestamp"))
        or datetime.now(IST)
    )
    return Fill(
        fill_id=str(record["trade_id"]),
        order_id=str(record["order_id"]),
        key=key_of(record),
        side=Side(record["transaction_type"]),
        product=product_from_kite(record["product"]),
        quantity=int(record["quantity"]),
        price=dec(record["average_price"]),
        ts=ts,
    )


def position_from_kite(record: Json) -> Position:
    return Position(
        key=key_of(record),
        product=product_from_kite(record["product"]),
        quantity=int(record["quantity"]),
        average_price=dec(record.get("average_price")),
        realised_pnl=money(record.get("realised")),
        last_price=dec(record.get("last_price")),
        buy_quantity=int(record.get("buy_quantity") or 0),
        sell_quantity=int(record.get("sell_quantity") or 0),
        multiplier=int(record.get("multiplier") or 1),
    )


def positions_from_kite(data: Json) -> list[Position]:
    """``/portfolio/positions``: the ``net`` book (``day`` is the same trades seen per day)."""
    return [position_from_kite(r) for r in data.get("net") or ()]


def holding_from_kite(record: Json) -> Holding:
    # T1 shares are bought and paid for but not yet delivered: they are the trader's.
    quantity = int(record.get("quantity") or 0) + int(record.get("t1_quantity") or 0)
    return Holding(
        key=key_of(record),
        quantity=quantity,
        average_price=dec(record.get("average_price")),
        last_price=dec(record.get("last_price")),
    )


def funds_from_kite(data: Json, segment: str = "equity") -> Funds:
    """``/user/margins`` (both segments) or ``/user/margins/{segment}`` as ``Funds``.

    ``available_cash`` is Kite's ``net``: what can still be used for new orders.
    """
    seg: Json = data.get(segment, data)
    available: Json = seg.get("available") or {}
    utilised: Json = seg.get("utilised") or {}
    return Funds(
        opening_balance=money(available.get("opening_balance")),
        available_cash=money(seg.get("net")),
        margin_used=money(utilised.get("debits")),
        realised_pnl=money(utilised.get("m2m_realised")),
        unrealised_pnl=money(utilised.get("m2m_unrealised")),
    )


def _levels(rows: Any) -> tuple[DepthLevel, ...]:
    return tuple(
        DepthLevel(dec(r.get("price")), int(r.get("quantity") or 0), int(r.get("orders") or 0))
        for r in rows or ()
        if dec(r.get("price")) != 0 or int(r.get("quantity") or 0) != 0
    )


def tick_from_quote(key: str, record: Json) -> Tick:
    """One entry of ``/quote`` (full) or ``/quote/ltp`` (last price only)."""
    ohlc: Json = record.get("ohlc") or {}
    depth_json: Json | None = record.get("depth")
    depth = (
        Depth(bids=_levels(depth_json.get("buy")), asks=_levels(depth_json.get("sell")))
        if depth_json
        else None
    )
    ts = (
        parse_ts(record.get("timestamp"))
        or parse_ts(record.get("last_trade_time"))
        or datetime.now(IST)
    )
    return Tick(
        key=key,
        ts=ts,
        last_price=dec(record.get("last_price")),
        last_quantity=int(record.get("last_quantity") or 0),
        volume=int(record.get("volume") or 0),
        open=dec(ohlc.get("open")),
        high=dec(ohlc.get("high")),
        low=dec(ohlc.get("low")),
        close=dec(ohlc.get("close")),
        depth=depth,
        oi=int(record.get("oi") or 0),
    )


def bars_from_kite(key: str, timeframe: Timeframe, data: Json) -> list[Bar]:
    """``/instruments/historical``: ``candles`` rows ``[time, o, h, l, c, volume(, oi)]``."""
    bars: list[Bar] = []
    for row in data.get("candles") or ():
        start = parse_ts(row[0])
        if start is None:
            raise MappingError(f"candle without a time: {row!r}")
        bars.append(
            Bar(
                key=key,
                timeframe=timeframe,
                start=start,
                open=dec(row[1]),
                high=dec(row[2]),
                low=dec(row[3]),
                close=dec(row[4]),
                volume=int(row[5]),
                closed=True,
            )
        )
    return bars


def bars_from_records(key: str, timeframe: Timeframe, records: Any) -> list[Bar]:
    """What ``KiteConnect.historical_data`` returns: dicts with ``date`` and OHLCV."""
    bars: list[Bar] = []
    for r in records:
        start = parse_ts(r["date"])
        if start is None:
            raise MappingError(f"candle without a time: {r!r}")
        bars.append(
            Bar(
                key=key,
                timeframe=timeframe,
                start=start,
                open=dec(r["open"]),
                high=dec(r["high"]),
                low=dec(r["low"]),
                close=dec(r["close"]),
                volume=int(r["volume"]),
                closed=True,
            )
        )
    return bars


def market_protection_param(protection: MarketProtection | None) -> int | str:
    """Kite's ``market_protection``: -1 (automatic) or a percentage above 0 and at most 100.

    The domain value already refuses zero ("no protection", which Kite refuses for API
    market orders) and anything above 100, Kite's own range.
    """
    if protection is None or protection.percent is None:
        return MARKET_PROTECTION_AUTO
    percent = protection.percent
    return int(percent) if percent == percent.to_integral_value() else str(percent)


def order_params(
    request: OrderRequest, *, variety: str, tag: str, algo_id: str | None = None
) -> dict[str, Any]:
    """Keyword arguments for ``KiteConnect.place_order`` (Kite words, prices as strings).

    MARKET and SL-M orders carry ``market_protection=-1`` (Kite's automatic protection): an
    unprotected market order can fill far from the last price in a thin book, and Kite
    refuses market orders without protection.
    """
    if request.validity is Validity.TTL:
        raise MappingError("TTL validity needs a duration, which the order ticket does not set")
    exchange, symbol = split_key(request.key)
    params: dict[str, Any] = {
        "variety": variety,
        "exchange": exchange,
        "tradingsymbol": symbol,
        "transaction_type": request.side.value,
        "quantity": request.quantity,
        "product": request.product.value,
        "order_type": request.order_type.value,
        "validity": request.validity.value,
        "tag": tag,
    }
    if request.order_type.needs_price:
        if request.price is None:
            raise MappingError(f"a {request.order_type} order needs a price")
        params["price"] = str(request.price)
    if request.order_type.needs_trigger:
        if request.trigger_price is None:
            raise MappingError(f"a {request.order_type} order needs a trigger price")
        params["trigger_price"] = str(request.trigger_price)
    if request.order_type in (OrderType.MARKET, OrderType.SL_M):
        params["market_protection"] = market_protection_param(request.market_protection)
    if algo_id:
        params["algo_id"] = algo_id
    return params
