"""The paper broker's margin model: simple, conservative and easy to check by hand.

* CNC (delivery equity): the full value, because the shares are paid for.
* MIS equity (intraday): 20% of the value (5x leverage, the SEBI peak-margin ceiling).
* Futures, any product: 15% of the notional (price x quantity).
* Option writing (a short option position): 15% of the strike notional; the strike stands in
  for the underlying price, which is close to it for the contracts people sell.
* Option buying: the full premium.

Margin is computed per exposure: an order blocks margin only for the part of it that opens or
increases a position (a sell that closes a long blocks nothing), and an open position holds
the margin of its quantity at its average price. Amounts are rounded up to the paisa so the
model never understates what is blocked. Mark-to-market losses are reported in
``Funds.unrealised_pnl`` but not deducted from available cash; realised P&L is.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from services.domain import (
    PAISA,
    ZERO,
    Instrument,
    InstrumentKind,
    OrderRequest,
    Position,
    Product,
    Side,
)

INTRADAY_EQUITY_RATE = Decimal("0.20")
FUTURE_RATE = Decimal("0.15")
OPTION_SELL_RATE = Decimal("0.15")


def margin_for(
    instrument: Instrument, product: Product, side: Side, quantity: int, price: Decimal
) -> Decimal:
    """Margin for ``quantity`` units of exposure on ``side`` (BUY = long, SELL = short)."""
    if quantity <= 0:
        return ZERO
    value = price * quantity
    kind = instrument.kind
    if kind is InstrumentKind.EQUITY or kind is InstrumentKind.INDEX:
        required = value if product is Product.CNC else value * INTRADAY_EQUITY_RATE
    elif kind is InstrumentKind.FUTURE:
        required = value * FUTURE_RATE
    elif side is Side.BUY:
        required = value
    else:
        required = (instrument.strike or price) * quantity * OPTION_SELL_RATE
    return required.quantize(PAISA, rounding=ROUND_CEILING)


def position_margin(instrument: Instrument, position: Position) -> Decimal:
    """Margin an open position holds: its quantity at its average price."""
    if position.quantity == 0:
        return ZERO
    side = Side.BUY if position.quantity > 0 else Side.SELL
    return margin_for(
        instrument, position.product, side, abs(position.quantity), position.average_price
    )


def product_error(instrument: Instrument, product: Product) -> str | None:
    """Why ``product`` cannot be used for ``instrument``, or ``None`` when it can."""
    if product is Product.CNC and instrument.is_derivative:
        return f"CNC is for delivery equity; use NRML or MIS for {instrument.key}"
    if product is Product.NRML and not instrument.is_derivative:
        return f"NRML is for derivatives; use CNC or MIS for {instrument.key}"
    return None


@dataclass(frozen=True, slots=True)
class PaperMarginModel:
    """The same model shaped as ``services.risk.context.MarginModel``, for pre-trade checks."""

    def required(self, request: OrderRequest, instrument: Instrument, price: Decimal) -> Decimal:
        return margin_for(instrument, request.product, request.side, request.quantity, price)
