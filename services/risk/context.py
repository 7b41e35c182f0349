"""What the risk engine needs to know about the world, as a protocol it can be handed.

The engine never reaches into the order manager, the feed or the broker: the composition root
gives it a ``RiskContext``. Checks run synchronously on the order path, so every method here
must answer from memory (a cache the services keep up to date), never from the network.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from services.clock import Clock
from services.domain import Instrument, InstrumentKind, Order, OrderRequest, Position, Product, Side


class MarginModel(Protocol):
    def required(self, request: OrderRequest, instrument: Instrument, price: Decimal) -> Decimal:
        """Return the margin the order would block, at ``price`` per unit."""
        ...


class RiskContext(Protocol):
    def now(self) -> datetime: ...

    def last_price(self, key: str) -> Decimal | None: ...

    def open_orders(self) -> Sequence[Order]:
        """Working orders, including those sent but not yet acknowledged by the broker."""
        ...

    def positions(self) -> Sequence[Position]: ...

    def available_funds(self) -> Decimal | None:
        """Cash free for new orders, or ``None`` when unknown (the margin check is skipped)."""
        ...

    def required_margin(
        self, request: OrderRequest, instrument: Instrument, price: Decimal
    ) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class SimpleMarginModel:
    """A conservative estimate until a broker's margin calculator is wired in.

    Delivery equity blocks the full value, intraday equity a fifth of it (5x leverage, the
    SEBI peak-margin ceiling), futures ``future_rate`` of the notional, a bought option its
    premium and a sold option ``option_sell_rate`` of the strike notional (the strike stands in
    for the underlying price, which is close to it for the contracts people sell).
    """

    intraday_equity_rate: Decimal = Decimal("0.20")
    future_rate: Decimal = Decimal("0.15")
    option_sell_rate: Decimal = Decimal("0.15")

    def required(self, request: OrderRequest, instrument: Instrument, price: Decimal) -> Decimal:
        value = price * request.quantity
        kind = instrument.kind
        if kind is InstrumentKind.EQUITY:
            return value if request.product is Product.CNC else value * self.intraday_equity_rate
        if kind is InstrumentKind.FUTURE:
            return value * self.future_rate
        if request.side is Side.BUY:
            return value
        notional = (instrument.strike or price) * request.quantity
        return notional * self.option_sell_rate


@dataclass(slots=True)
class CallbackContext:
    """A ``RiskContext`` assembled from callables, so any service's cache can feed it."""

    clock: Clock
    last_price_of: Callable[[str], Decimal | None]
    open_orders_of: Callable[[], Sequence[Order]] = tuple
    positions_of: Callable[[], Sequence[Position]] = tuple
    funds_of: Callable[[], Decimal | None] = lambda: None
    margin: MarginModel = field(default_factory=SimpleMarginModel)

    def now(self) -> datetime:
        return self.clock.now()

    def last_price(self, key: str) -> Decimal | None:
        return self.last_price_of(key)

    def open_orders(self) -> Sequence[Order]:
        return self.open_orders_of()

    def positions(self) -> Sequence[Position]:
        return self.positions_of()

    def available_funds(self) -> Decimal | None:
        return self.funds_of()

    def required_margin(
        self, request: OrderRequest, instrument: Instrument, price: Decimal
    ) -> Decimal:
        return self.margin.required(request, instrument, price)
