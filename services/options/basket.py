"""Multi-leg baskets: the legs of a straddle, strangle or spread, their margin and payoff.

A basket is sent leg by leg in the order given (buy legs first is the trader's choice to
make: a hedge bought before the short leg lowers the margin a broker blocks), after one
confirmation. If a leg is refused the rest are not sent, and the result says which legs
went, so nothing is retried blindly.

Margin: the paper broker and the simulator have no SPAN file, so ``estimate_margin`` is a
documented *estimate*, deliberately conservative: a bought option blocks its premium; a
sold option or a future blocks a fraction of its notional (``INDEX_MARGIN_RATE`` for
index derivatives, ``STOCK_MARGIN_RATE`` for stock derivatives, close to SPAN plus exposure
for a typical day) less, for options, the premium received. Hedges get no offset. A broker
with a basket-margin API (Kite's ``/margins/basket``) replaces this with its own figure.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import numpy as np

from services.domain import (
    ZERO,
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)
from services.options.pricing import FloatArray

INDEX_MARGIN_RATE = Decimal("0.12")
STOCK_MARGIN_RATE = Decimal("0.20")


@dataclass(frozen=True, slots=True)
class BasketLeg:
    instrument: Instrument
    side: Side
    lots: int = 1
    price: Decimal | None = None  # None: a MARKET leg
    order_type: OrderType = OrderType.LIMIT

    @property
    def quantity(self) -> int:
        return self.lots * self.instrument.lot_size

    def request(self, product: Product, tag: str | None = None) -> OrderRequest:
        order_type = self.order_type if self.price is not None else OrderType.MARKET
        return OrderRequest(
            key=self.instrument.key,
            side=self.side,
            quantity=self.quantity,
            order_type=order_type,
            product=product,
            price=self.price if order_type.needs_price else None,
            tag=tag,
            source="basket",
        )


@dataclass(frozen=True, slots=True)
class MarginEstimate:
    total: Decimal
    premium_paid: Decimal
    premium_received: Decimal
    per_leg: tuple[Decimal, ...]
    estimated: bool = True  # False when a broker's margin API gave the figure


def estimate_margin(
    legs: Sequence[BasketLeg], price_of: Callable[[str], Decimal | None]
) -> MarginEstimate:
    """The conservative estimate described in the module note; unknown prices count 0."""
    per_leg: list[Decimal] = []
    paid = received = ZERO
    for leg in legs:
        inst = leg.instrument
        premium = leg.price if leg.price is not None else price_of(inst.key) or ZERO
        qty = leg.quantity
        option = inst.kind in (InstrumentKind.CALL, InstrumentKind.PUT)
        if option and leg.side is Side.BUY:
            per_leg.append(premium * qty)
            paid += premium * qty
            continue
        underlying = price_of(inst.underlying) if inst.underlying else None
        reference = underlying if option and underlying is not None else premium
        index = inst.underlying is not None and not inst.underlying.endswith(":" + inst.name)
        rate = INDEX_MARGIN_RATE if index else STOCK_MARGIN_RATE
        margin = reference * qty * rate
        if option:
            received += premium * qty
            margin = max(margin - premium * qty, premium * qty)
        per_leg.append(margin)
    return MarginEstimate(sum(per_leg, ZERO), paid, received, tuple(per_leg))


@dataclass(frozen=True, slots=True)
class Payoff:
    """Profit and loss at expiry over a grid of underlying prices, in rupees."""

    prices: FloatArray
    pnl: FloatArray
    breakevens: tuple[float, ...]
    max_profit: float | None  # None: unbounded within the grid's edges
    max_loss: float | None


def expiry_payoff(
    legs: Sequence[BasketLeg],
    price_of: Callable[[str], Decimal | None],
    centre: float,
    *,
    width: float = 0.15,
    points: int = 601,
) -> Payoff:
    """P&L at expiry of ``legs`` bought or sold at their limit (or last) price."""
    prices = np.linspace(centre * (1 - width), centre * (1 + width), points)
    pnl = np.zeros_like(prices)
    for leg in legs:
        inst = leg.instrument
        entry = float(leg.price if leg.price is not None else price_of(inst.key) or ZERO)
        sign = leg.side.sign
        if inst.kind is InstrumentKind.CALL and inst.strike is not None:
            value = np.maximum(prices - float(inst.strike), 0.0)
        elif inst.kind is InstrumentKind.PUT and inst.strike is not None:
            value = np.maximum(float(inst.strike) - prices, 0.0)
        else:
            value = prices.copy()
        pnl += sign * (value - entry) * leg.quantity
    crossings = np.flatnonzero(np.diff(np.sign(pnl)) != 0)
    breakevens = tuple(
        float(prices[i] - pnl[i] * (prices[i + 1] - prices[i]) / (pnl[i + 1] - pnl[i]))
        for i in crossings
        if pnl[i + 1] != pnl[i]
    )
    # A slope at either edge of the grid means the P&L keeps going beyond it.
    rising = pnl[-1] > pnl[-2] + 1e-9 or pnl[0] > pnl[1] + 1e-9
    falling = pnl[-1] < pnl[-2] - 1e-9 or pnl[0] < pnl[1] - 1e-9
    return Payoff(
        prices=prices,
        pnl=pnl,
        breakevens=breakevens,
        max_profit=None if rising else float(pnl.max()),
        max_loss=None if falling else float(pnl.min()),
    )


@dataclass(slots=True)
class BasketResult:
    orders: list[Order] = field(default_factory=list)
    stopped_at: int | None = None  # index of the refused leg; later legs were not sent
    message: str = ""

    @property
    def complete(self) -> bool:
        return self.stopped_at is None


async def place_basket(
    legs: Sequence[BasketLeg],
    submit: Callable[[OrderRequest], Awaitable[Order]],
    product: Product,
    tag_prefix: str,
) -> BasketResult:
    """Submit each leg in order; stop at the first refusal (REJECTED order or an error)."""
    result = BasketResult()
    for n, leg in enumerate(legs):
        request = leg.request(product, tag=f"{tag_prefix}{n}")
        try:
            order = await submit(request)
        except Exception as e:  # any refusal stops the basket, said plainly
            result.stopped_at, result.message = n, f"leg {n + 1} ({leg.instrument.key}): {e}"
            return result
        result.orders.append(order)
        if order.status is OrderStatus.REJECTED:
            result.stopped_at = n
            result.message = f"leg {n + 1} ({leg.instrument.key}) rejected: {order.status_message}"
            return result
    result.message = f"{len(result.orders)} legs sent"
    return result
