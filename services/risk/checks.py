"""The pre-trade rules, one function or small class each.

Every refusal is an ``OrderRejected`` whose ``rule`` is the rule's name and whose message
reads ``"<rule>: <what> <value> <breaks> <limit>"``, because the order ticket and the order
book show it verbatim and a trader must see at once which limit stopped the order and by how
much. The functions take plain values rather than the engine so each can be tested at its
boundary on its own.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from services.broker import OrderRejected
from services.domain import (
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderType,
    Position,
    Side,
)
from services.domain import format_inr as inr
from services.risk.limits import OptionBand, RiskLimits
from services.validation import OrderValidationError, validate_order

TRADING_STATE = "trading_state"
REDUCE_ONLY = "reduce_only"
ORDER_VALIDATION = "order_validation"
LOT_SIZE = "lot_size"
TICK_SIZE = "tick_size"
FREEZE_QUANTITY = "freeze_quantity"
MAX_ORDER_QUANTITY = "max_order_quantity"
PRICE_BAND = "price_band"
MAX_ORDER_VALUE = "max_order_value"
MAX_OPEN_ORDERS = "max_open_orders"
DUPLICATE_ORDER = "duplicate_order"
ORDER_RATE = "order_rate"
MARGIN = "margin"

ALL_RULES: tuple[str, ...] = (
    TRADING_STATE,
    REDUCE_ONLY,
    ORDER_VALIDATION,
    LOT_SIZE,
    TICK_SIZE,
    FREEZE_QUANTITY,
    MAX_ORDER_QUANTITY,
    PRICE_BAND,
    MAX_ORDER_VALUE,
    MAX_OPEN_ORDERS,
    DUPLICATE_ORDER,
    ORDER_RATE,
    MARGIN,
)


def reject(rule: str, message: str) -> OrderRejected:
    return OrderRejected(f"{rule}: {message}", rule=rule)


def check_well_formed(
    request: OrderRequest, instrument: Instrument, last_price: Decimal | None
) -> None:
    """Run the exchange's own rules from ``services.validation`` and name the rule broken."""
    try:
        validate_order(request, instrument, last_price)
    except OrderValidationError as exc:
        rule = ORDER_VALIDATION
        if exc.field == "quantity" and request.quantity > 0:
            rule = LOT_SIZE
        elif exc.field in ("price", "trigger_price") and "tick size" in exc.message:
            rule = TICK_SIZE
        raise reject(rule, exc.message) from None


def freeze_limit(instrument: Instrument, table: dict[str, int]) -> int | None:
    if instrument.freeze_quantity is not None:
        return instrument.freeze_quantity
    return table.get(instrument.name)


def check_freeze_quantity(request: OrderRequest, limit: int | None) -> None:
    """The exchange refuses a single order above the freeze quantity; the limit itself passes."""
    if limit is not None and request.quantity > limit:
        raise reject(
            FREEZE_QUANTITY,
            f"quantity {request.quantity} exceeds the exchange freeze quantity {limit}",
        )


def check_max_quantity(request: OrderRequest, limit: int | None) -> None:
    if limit is not None and request.quantity > limit:
        raise reject(
            MAX_ORDER_QUANTITY, f"quantity {request.quantity} exceeds the limit {limit}"
        )


def order_price(request: OrderRequest, last_price: Decimal | None) -> Decimal | None:
    """The price an order is expected to trade at: its limit, its trigger, else the market."""
    if request.order_type.needs_price:
        return request.price
    if request.order_type is OrderType.SL_M:
        return request.trigger_price
    return last_price


def _option_band_width(bands: Iterable[OptionBand], reference: Decimal) -> Decimal | None:
    for band in bands:
        if band.up_to is None or reference <= band.up_to:
            return band.width(reference)
    return None


def price_band(
    instrument: Instrument, reference: Decimal, limits: RiskLimits
) -> tuple[Decimal, Decimal] | None:
    """Return the (low, high) prices allowed around ``reference``, or None if unbounded."""
    kind = instrument.kind
    if kind in (InstrumentKind.CALL, InstrumentKind.PUT):
        if limits.option_price_bands is None:
            return None
        width = _option_band_width(limits.option_price_bands, reference)
    else:
        percent = (
            limits.future_price_band_percent
            if kind is InstrumentKind.FUTURE
            else limits.equity_price_band_percent
        )
        if percent is None:
            return None
        width = reference * percent / 100
    if width is None:
        return None
    return reference - width, reference + width


def check_price_band(
    request: OrderRequest,
    instrument: Instrument,
    last_price: Decimal | None,
    limits: RiskLimits,
) -> None:
    if not request.order_type.needs_price or request.price is None:
        return  # market and SL-M orders: the broker's market protection bounds them
    if last_price is None:
        return  # nothing to measure against (first order before any tick)
    band = price_band(instrument, last_price, limits)
    if band is None:
        return
    low, high = band
    if request.side is Side.BUY and request.price > high:
        raise reject(
            PRICE_BAND,
            f"buy price {inr(request.price)} is above the band limit {inr(high)} "
            f"(last price {inr(last_price)})",
        )
    if request.side is Side.SELL and request.price < low:
        raise reject(
            PRICE_BAND,
            f"sell price {inr(request.price)} is below the band limit {inr(low)} "
            f"(last price {inr(last_price)})",
        )


def check_market_has_price(request: OrderRequest, price: Decimal | None) -> None:
    """A market order into a book we have never seen cannot be valued or bounded."""
    if price is None and request.order_type is OrderType.MARKET:
        raise reject(
            PRICE_BAND, f"no last price for {request.key}: a market order cannot be bounded"
        )


def check_max_value(value: Decimal, limit: Decimal | None) -> None:
    if limit is not None and value > limit:
        raise reject(
            MAX_ORDER_VALUE, f"order value {inr(value)} exceeds the limit {inr(limit)}"
        )


def check_open_orders(open_count: int, limit: int | None) -> None:
    """``limit`` open orders are allowed; the order that would make one more is refused."""
    if limit is not None and open_count >= limit:
        raise reject(
            MAX_OPEN_ORDERS,
            f"{open_count} open orders; one more would exceed the limit {limit}",
        )


def check_margin(required: Decimal, available: Decimal | None) -> None:
    if available is not None and required > available:
        raise reject(
            MARGIN, f"required margin {inr(required)} exceeds available funds {inr(available)}"
        )


def reducible_quantity(
    request: OrderRequest, positions: Iterable[Position], open_orders: Iterable[Order]
) -> int:
    """How much of ``request``'s size would only shrink the exposure it trades against.

    The net position of the same instrument and product is the exposure. Working orders on
    the same side as ``request`` are counted as if they had already filled: the worst case is
    that they all fill before this one, and then this order must still not flip the position.
    Working orders that add to the position are ignored, since they may never fill.
    Returns 0 when ``request`` points the same way as the position (or there is none).
    """
    net = 0
    for pos in positions:
        if pos.key == request.key and pos.product is request.product:
            net += pos.quantity
    direction = request.side.sign
    if net == 0 or (net > 0) == (direction > 0):
        return 0
    room = abs(net)
    for order in open_orders:
        r = order.request
        if r.key == request.key and r.product is request.product and r.side is request.side:
            room -= order.pending_quantity
    return max(room, 0)


def check_reduce_only(request: OrderRequest, reducible: int) -> None:
    if request.quantity > reducible:
        raise reject(
            REDUCE_ONLY,
            f"trading is REDUCING: quantity {request.quantity} exceeds the {reducible} "
            "that would only reduce the position",
        )


class DuplicateWindow:
    """Refuses the same instrument, side, quantity and price again within ``window``."""

    def __init__(self, window_seconds: float) -> None:
        self.window = timedelta(seconds=window_seconds)
        self._seen: dict[tuple[str, Side, int, Decimal | None], datetime] = {}
        self._pruned_at: datetime | None = None

    @staticmethod
    def _key(request: OrderRequest) -> tuple[str, Side, int, Decimal | None]:
        return (request.key, request.side, request.quantity, request.price)

    def check(self, request: OrderRequest, now: datetime) -> None:
        last = self._seen.get(self._key(request))
        if last is not None and now - last < self.window:
            age_ms = (now - last).total_seconds() * 1000
            raise reject(
                DUPLICATE_ORDER,
                f"the same order was sent {age_ms:.0f} ms ago, within the "
                f"{self.window.total_seconds():g} s duplicate window",
            )

    def record(self, request: OrderRequest, now: datetime) -> None:
        self._seen[self._key(request)] = now
        if self._pruned_at is None or now - self._pruned_at > self.window * 10:
            self._seen = {k: t for k, t in self._seen.items() if now - t < self.window}
            self._pruned_at = now


class RateWindow:
    """A sliding one-second window: at most ``limit`` orders in any interval (t - 1 s, t]."""

    WINDOW = timedelta(seconds=1)

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[datetime] = deque()

    def count(self, now: datetime) -> int:
        times = self._times
        edge = now - self.WINDOW
        while times and times[0] <= edge:
            times.popleft()
        return len(times)

    def check(self, now: datetime) -> None:
        if self.count(now) >= self.limit:
            raise reject(
                ORDER_RATE,
                f"{len(self._times)} orders in the last second; one more would exceed the limit "
                f"{self.limit} per second",
            )

    def record(self, now: datetime) -> None:
        self._times.append(now)
