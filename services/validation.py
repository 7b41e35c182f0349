"""Order validation: the checks that make an order well-formed before any broker sees it.

These are the exchange's own rules (tick size, lot size, price and trigger relations), not
the trader's risk limits; ``services.risk`` adds those on top. Every refusal names the field
and the rule, in words a trader understands, because the order ticket shows it verbatim.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from services.domain import Instrument, OrderRequest, OrderType, Side, Validity, is_on_tick


class OrderValidationError(ValueError):
    """An order that cannot be sent as it stands; ``field`` names the offending input."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


def _fmt(value: Decimal) -> str:
    return format(value.normalize(), "f")


def check_price_on_grid(field: str, value: Decimal, tick: Decimal) -> None:
    if value <= 0:
        raise OrderValidationError(field, f"{field.replace('_', ' ')} must be positive")
    if not is_on_tick(value, tick):
        raise OrderValidationError(
            field,
            f"{field.replace('_', ' ')} {_fmt(value)} is not a multiple of tick size {_fmt(tick)}",
        )


def validate_order(
    request: OrderRequest,
    instrument: Instrument | None,
    last_price: Decimal | None = None,
    today: date | None = None,
) -> None:
    """Raise ``OrderValidationError`` for the first rule ``request`` breaks.

    ``last_price`` enables the exchange's trigger check: a stop-loss buy must trigger above
    the market and a stop-loss sell below it, or it would fire at once. ``today`` (the IST
    trading date) refuses contracts past their expiry, which an instrument list cached
    before the expiry may still hold.
    """
    if instrument is None:
        raise OrderValidationError("symbol", f"unknown symbol {request.key}")
    if not instrument.tradable:
        raise OrderValidationError("symbol", f"{request.key} is an index and cannot be traded")
    if today is not None and instrument.expiry is not None and instrument.expiry < today:
        raise OrderValidationError(
            "symbol", f"{request.key} expired on {instrument.expiry:%d %b %Y}"
        )
    if request.quantity <= 0:
        raise OrderValidationError("quantity", f"quantity {request.quantity} must be positive")
    if request.quantity % instrument.lot_size != 0:
        raise OrderValidationError(
            "quantity",
            f"quantity {request.quantity} is not a multiple of lot size {instrument.lot_size}",
        )
    if request.validity is Validity.TTL:
        raise OrderValidationError("validity", "TTL validity is not supported by this broker")
    if request.validity is Validity.IOC and request.order_type.needs_trigger:
        raise OrderValidationError("validity", "IOC validity cannot be used with stop-loss orders")

    tick = instrument.tick_size
    if request.order_type.needs_price:
        if request.price is None:
            raise OrderValidationError("price", f"a {request.order_type} order needs a price")
        check_price_on_grid("price", request.price, tick)
    elif request.price is not None and request.price != 0:
        raise OrderValidationError("price", f"a {request.order_type} order takes no price")

    if request.order_type.needs_trigger:
        trigger = request.trigger_price
        if trigger is None:
            raise OrderValidationError(
                "trigger_price", f"a {request.order_type} order needs a trigger price"
            )
        check_price_on_grid("trigger_price", trigger, tick)
        _check_trigger_relations(request, trigger, last_price)
    elif request.trigger_price is not None and request.trigger_price != 0:
        raise OrderValidationError(
            "trigger_price", f"a {request.order_type} order takes no trigger price"
        )


def _check_trigger_relations(
    request: OrderRequest, trigger: Decimal, last_price: Decimal | None
) -> None:
    price = request.price
    if request.side is Side.BUY:
        if request.order_type is OrderType.SL and price is not None and trigger > price:
            raise OrderValidationError(
                "trigger_price",
                f"trigger price {_fmt(trigger)} must not be above the limit price {_fmt(price)} "
                "for a stop-loss buy",
            )
        if last_price is not None and trigger <= last_price:
            raise OrderValidationError(
                "trigger_price",
                f"trigger price {_fmt(trigger)} must be above the last price {_fmt(last_price)} "
                "for a stop-loss buy",
            )
    else:
        if request.order_type is OrderType.SL and price is not None and trigger < price:
            raise OrderValidationError(
                "trigger_price",
                f"trigger price {_fmt(trigger)} must not be below the limit price {_fmt(price)} "
                "for a stop-loss sell",
            )
        if last_price is not None and trigger >= last_price:
            raise OrderValidationError(
                "trigger_price",
                f"trigger price {_fmt(trigger)} must be below the last price {_fmt(last_price)} "
                "for a stop-loss sell",
            )
