"""Black-Scholes / Black-76 values and Greeks against published reference values.

References are John C. Hull, *Options, Futures, and Other Derivatives* (9th ed., 2015):
- Example 15.6: S0=42, K=40, r=10%, sigma=20%, T=0.5 -> call 4.76, put 0.81.
- Example 18.6 (Black's model): a 4-month put on a futures price of 20, K=20, r=9%,
  sigma=25% -> 1.12.
- Section 19.1 / Examples 19.1, 19.4, 19.6, 19.8 (the running "greek letters" example):
  S0=49, K=50, r=5%, sigma=20%, T=20 weeks (0.3846) -> call 2.40, delta 0.522,
  theta -4.31 a year, gamma 0.066, vega 12.1 per unit of volatility.
Hull rounds to the digits quoted, so the tolerances are half a unit in the last digit.
"""

from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pytest

from services.clock import IST
from services.options.pricing import (
    Model,
    greeks,
    norm_cdf,
    option_value,
    years_to_expiry,
)

BS = Model.BLACK_SCHOLES


def test_hull_example_15_6_call_and_put() -> None:
    call = option_value(42, 40, 0.5, 0.2, True, rate=0.1, model=BS)
    put = option_value(42, 40, 0.5, 0.2, False, rate=0.1, model=BS)
    assert call == pytest.approx(4.76, abs=0.005)
    assert put == pytest.approx(0.81, abs=0.005)


def test_hull_black_76_futures_put() -> None:
    value = option_value(20, 20, 4 / 12, 0.25, False, rate=0.09, model=Model.BLACK_76)
    assert value == pytest.approx(1.12, abs=0.005)


def test_hull_greek_letters_example() -> None:
    g = greeks(49, 50, 20 / 52, 0.2, True, rate=0.05, model=BS)
    assert float(g.value) == pytest.approx(2.40, abs=0.005)
    assert float(g.delta) == pytest.approx(0.522, abs=0.0005)
    assert float(g.gamma) == pytest.approx(0.066, abs=0.0005)
    # NSE quotes theta per calendar day and vega per volatility point: Hull's per-year and
    # per-unit figures divided by 365 and 100.
    assert float(g.theta) * 365 == pytest.approx(-4.31, abs=0.005)
    assert float(g.vega) * 100 == pytest.approx(12.1, abs=0.05)


def test_put_greeks_satisfy_parity() -> None:
    call = greeks(100, 105, 0.1, 0.3, True, rate=0.065, model=BS)
    put = greeks(100, 105, 0.1, 0.3, False, rate=0.065, model=BS)
    # c - p = S - K e^{-rT}; delta_c - delta_p = 1; equal gamma and vega.
    assert float(call.value - put.value) == pytest.approx(100 - 105 * math.exp(-0.0065))
    assert float(call.delta - put.delta) == pytest.approx(1.0)
    assert float(call.gamma) == pytest.approx(float(put.gamma))
    assert float(call.vega) == pytest.approx(float(put.vega))


def test_black_76_and_black_scholes_agree_on_the_forward() -> None:
    spot, rate, years = 26_000.0, 0.065, 7 / 365
    forward = spot * math.exp(rate * years)
    b76 = greeks(forward, 26_100, years, 0.14, True, rate=rate, model=Model.BLACK_76)
    bs = greeks(spot, 26_100, years, 0.14, True, rate=rate, model=BS)
    assert float(b76.value) == pytest.approx(float(bs.value), rel=1e-9)
    assert float(b76.vega) == pytest.approx(float(bs.vega), rel=1e-9)


def test_at_expiry_intrinsic_and_step_delta() -> None:
    g = greeks(
        np.array([110.0, 90.0, 100.0]), 100.0, 0.0, 0.2, np.array([True, True, False]), rate=0.06
    )
    assert g.value.tolist() == [10.0, 0.0, 0.0]
    assert g.delta.tolist() == [1.0, 0.0, -0.5]
    assert g.gamma.tolist() == g.vega.tolist() == g.theta.tolist() == [0.0, 0.0, 0.0]


def test_norm_cdf_matches_math_erfc_in_the_tails() -> None:
    xs = np.linspace(-12, 8, 2001)
    exact = np.array([0.5 * math.erfc(-x / math.sqrt(2)) for x in xs])
    assert np.all(np.abs(norm_cdf(xs) - exact) <= 2e-7 * exact + 1e-300)


def test_years_to_expiry_runs_to_the_1530_close() -> None:
    expiry = date(2026, 12, 29)
    morning = datetime(2026, 12, 29, 9, 30, tzinfo=IST)
    assert years_to_expiry(expiry, morning) == pytest.approx(6 * 3600 / (365 * 86400))
    assert years_to_expiry(expiry, datetime(2026, 12, 29, 15, 31, tzinfo=IST)) == 0.0
