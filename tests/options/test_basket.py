"""Basket margin estimate and expiry payoff, worked by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.domain import Exchange, Instrument, InstrumentKind, Side
from services.options.basket import BasketLeg, estimate_margin, expiry_payoff

EXPIRY = date(2026, 12, 29)
SPOT = "NSE:NIFTY 50"


def _opt(strike: int, kind: InstrumentKind) -> Instrument:
    return Instrument(
        Exchange.NFO, f"NIFTY26DEC{strike}{kind.value}", strike, "NIFTY", kind, Decimal("0.05"),
        65, expiry=EXPIRY, strike=Decimal(strike), underlying=SPOT,
    )


CE = _opt(26_000, InstrumentKind.CALL)
PE = _opt(26_000, InstrumentKind.PUT)
PRICES = {SPOT: Decimal(26_000), CE.key: Decimal(200), PE.key: Decimal(150)}


def test_long_straddle_payoff_has_breakevens_at_strike_plus_minus_premium() -> None:
    legs = [BasketLeg(CE, Side.BUY, 1, Decimal(200)), BasketLeg(PE, Side.BUY, 1, Decimal(150))]
    payoff = expiry_payoff(legs, PRICES.get, 26_000.0)
    assert payoff.breakevens == pytest.approx((25_650.0, 26_350.0), abs=0.5)
    assert payoff.max_loss == pytest.approx(-350 * 65)
    assert payoff.max_profit is None  # unbounded both ways


def test_short_strangle_profit_is_capped_at_the_premium() -> None:
    ce, pe = _opt(26_200, InstrumentKind.CALL), _opt(25_800, InstrumentKind.PUT)
    legs = [BasketLeg(ce, Side.SELL, 2, Decimal(80)), BasketLeg(pe, Side.SELL, 2, Decimal(70))]
    payoff = expiry_payoff(legs, PRICES.get, 26_000.0)
    assert payoff.max_profit == pytest.approx(150 * 130)
    assert payoff.max_loss is None
    assert payoff.breakevens == pytest.approx((25_650.0, 26_350.0), abs=0.5)


def test_margin_estimate_premium_for_buys_notional_share_for_sells() -> None:
    buy = estimate_margin([BasketLeg(CE, Side.BUY, 2, Decimal(200))], PRICES.get)
    assert buy.total == Decimal(200) * 130 and buy.premium_paid == buy.total
    sell = estimate_margin([BasketLeg(PE, Side.SELL, 1, Decimal(150))], PRICES.get)
    assert sell.total == Decimal(26_000) * 65 * Decimal("0.12") - Decimal(150) * 65
    assert sell.premium_received == Decimal(150) * 65
    both = estimate_margin(
        [BasketLeg(CE, Side.BUY, 2, Decimal(200)), BasketLeg(PE, Side.SELL, 1, Decimal(150))],
        PRICES.get,
    )
    assert both.total == buy.total + sell.total and both.estimated  # no hedge offset
