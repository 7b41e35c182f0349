"""The JSON form of orders, fills, positions and funds between a node and its desktop.

Both ends are this codebase, so the encoding is lossless: prices and money travel as decimal
strings (never JSON numbers, which most parsers turn into binary floats) and times as ISO-8601
with their offset. ``decode_*`` raises ``WireError`` on anything it cannot read exactly.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.broker import OrderChange
from services.domain import (
    AUTO_PROTECTION,
    Fill,
    Funds,
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

STREAM_PROTOCOL = "dalal.stream.v1"  # the WebSocket subprotocol of /v1/stream
SUPPORTED_PROTOCOLS = (STREAM_PROTOCOL,)


class WireError(ValueError):
    """A message from the other end that does not decode; the message says which field."""


def _dec(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _to_dec(raw: Any, name: str) -> Decimal:
    if not isinstance(raw, str):
        raise WireError(f"{name}: expected a decimal string, got {type(raw).__name__}")
    try:
        return Decimal(raw)
    except InvalidOperation:
        raise WireError(f"{name}: {raw!r} is not a decimal") from None


def _opt_dec(raw: Any, name: str) -> Decimal | None:
    return None if raw is None else _to_dec(raw, name)


def _time(raw: Any, name: str) -> datetime:
    try:
        value = datetime.fromisoformat(raw)
    except (TypeError, ValueError):
        raise WireError(f"{name}: {raw!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        raise WireError(f"{name}: {raw!r} has no UTC offset")
    return value


def _protection(raw: Any) -> MarketProtection | None:
    if raw is None:
        return None
    if raw == "auto":
        return AUTO_PROTECTION
    return MarketProtection(_to_dec(raw, "market_protection"))


def _flag(raw: Any, name: str) -> bool:
    if not isinstance(raw, bool):
        raise WireError(f"{name}: {raw!r} is not true or false")
    return raw


def encode_request(r: OrderRequest) -> dict[str, Any]:
    out: dict[str, Any] = {
        "key": r.key,
        "side": r.side.value,
        "quantity": r.quantity,
        "order_type": r.order_type.value,
        "product": r.product.value,
        "validity": r.validity.value,
        "price": _dec(r.price),
        "trigger_price": _dec(r.trigger_price),
        "tag": r.tag,
    }
    if r.market_protection is not None:
        percent = r.market_protection.percent
        out["market_protection"] = "auto" if percent is None else str(percent)
    if r.amo:  # only when asked: a node that predates it refuses the field, never drops it
        out["amo"] = True
    return out


def decode_request(raw: dict[str, Any], *, source: str = "node") -> OrderRequest:
    try:
        return OrderRequest(
            key=str(raw["key"]),
            side=Side(raw["side"]),
            quantity=int(raw["quantity"]),
            order_type=OrderType(raw["order_type"]),
            product=Product(raw["product"]),
            validity=Validity(raw.get("validity", "DAY")),
            price=_opt_dec(raw.get("price"), "price"),
            trigger_price=_opt_dec(raw.get("trigger_price"), "trigger_price"),
            tag=raw.get("tag"),
            source=str(raw.get("source", source)),
            market_protection=_protection(raw.get("market_protection")),
            amo=_flag(raw.get("amo", False), "amo"),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, WireError):
            raise
        raise WireError(f"order request: {e}") from None


def encode_order(o: Order) -> dict[str, Any]:
    return {
        "order_id": o.order_id,
        **encode_request(o.request),
        "source": o.request.source,
        "status": o.status.value,
        "filled_quantity": o.filled_quantity,
        "average_price": str(o.average_price),
        "status_message": o.status_message,
        "placed_at": o.placed_at.isoformat(),
        "updated_at": o.updated_at.isoformat(),
        "broker_order_id": o.broker_order_id,
    }


def decode_order(raw: dict[str, Any]) -> Order:
    try:
        return Order(
            order_id=str(raw["order_id"]),
            request=decode_request(raw),
            status=OrderStatus(raw["status"]),
            placed_at=_time(raw["placed_at"], "placed_at"),
            updated_at=_time(raw["updated_at"], "updated_at"),
            filled_quantity=int(raw.get("filled_quantity", 0)),
            average_price=_to_dec(raw.get("average_price", "0"), "average_price"),
            status_message=str(raw.get("status_message", "")),
            broker_order_id=raw.get("broker_order_id"),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, WireError):
            raise
        raise WireError(f"order: {e}") from None


def encode_change(c: OrderChange) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if c.quantity is not None:
        out["quantity"] = c.quantity
    if c.price is not None:
        out["price"] = str(c.price)
    if c.trigger_price is not None:
        out["trigger_price"] = str(c.trigger_price)
    if c.order_type is not None:
        out["order_type"] = c.order_type.value
    return out


def encode_fill(f: Fill) -> dict[str, Any]:
    return {
        "fill_id": f.fill_id,
        "order_id": f.order_id,
        "key": f.key,
        "side": f.side.value,
        "product": f.product.value,
        "quantity": f.quantity,
        "price": str(f.price),
        "ts": f.ts.isoformat(),
    }


def decode_fill(raw: dict[str, Any]) -> Fill:
    try:
        return Fill(
            fill_id=str(raw["fill_id"]),
            order_id=str(raw["order_id"]),
            key=str(raw["key"]),
            side=Side(raw["side"]),
            product=Product(raw["product"]),
            quantity=int(raw["quantity"]),
            price=_to_dec(raw["price"], "price"),
            ts=_time(raw["ts"], "ts"),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, WireError):
            raise
        raise WireError(f"fill: {e}") from None


def encode_position(p: Position) -> dict[str, Any]:
    return {
        "key": p.key,
        "product": p.product.value,
        "quantity": p.quantity,
        "average_price": str(p.average_price),
        "realised_pnl": str(p.realised_pnl),
        "last_price": str(p.last_price),
        "buy_quantity": p.buy_quantity,
        "sell_quantity": p.sell_quantity,
        "multiplier": p.multiplier,
    }


def decode_position(raw: dict[str, Any]) -> Position:
    try:
        return Position(
            key=str(raw["key"]),
            product=Product(raw["product"]),
            quantity=int(raw["quantity"]),
            average_price=_to_dec(raw["average_price"], "average_price"),
            realised_pnl=_to_dec(raw["realised_pnl"], "realised_pnl"),
            last_price=_to_dec(raw["last_price"], "last_price"),
            buy_quantity=int(raw.get("buy_quantity", 0)),
            sell_quantity=int(raw.get("sell_quantity", 0)),
            multiplier=int(raw.get("multiplier", 1)),
        )
    except (KeyError, TypeError, ValueError) as e:
        if isinstance(e, WireError):
            raise
        raise WireError(f"position: {e}") from None


def encode_funds(f: Funds) -> dict[str, Any]:
    return {
        "opening_balance": str(f.opening_balance),
        "available_cash": str(f.available_cash),
        "margin_used": str(f.margin_used),
        "realised_pnl": str(f.realised_pnl),
        "unrealised_pnl": str(f.unrealised_pnl),
    }


def decode_funds(raw: dict[str, Any]) -> Funds:
    try:
        return Funds(**{k: _to_dec(raw[k], k) for k in (
            "opening_balance", "available_cash", "margin_used", "realised_pnl",
            "unrealised_pnl")})  # fmt: skip
    except (KeyError, TypeError) as e:
        raise WireError(f"funds: {e}") from None
