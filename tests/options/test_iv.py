"""The IV solver: Hull's worked example, round trips across moneyness, and clean failure."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.options.iv import implied_volatility, implied_volatility_array
from services.options.pricing import Model, greeks, option_value


def test_hull_implied_volatility_example() -> None:
    # Hull, 9th ed., Section 15.11: a call worth 1.875 with S0=21, K=20, r=0.1, T=0.25
    # has an implied volatility of 0.235.
    iv = implied_volatility(1.875, 21, 20, 0.25, True, rate=0.1, model=Model.BLACK_SCHOLES)
    assert iv == pytest.approx(0.235, abs=0.0005)


@settings(max_examples=300, deadline=None)
@given(
    moneyness=st.floats(-0.45, 0.45),
    vol=st.floats(0.03, 2.5),
    days=st.floats(0.02, 400.0),
    is_call=st.booleans(),
)
def test_round_trip_deep_in_and_out_of_the_money(
    moneyness: float, vol: float, days: float, is_call: bool
) -> None:
    forward, years = 26_000.0, days / 365
    strike = forward * math.exp(moneyness)
    price = option_value(forward, strike, years, vol, is_call, rate=0.065)
    intrinsic = max(forward - strike, 0) if is_call else max(strike - forward, 0)
    time_value = price - intrinsic * math.exp(-0.065 * years)
    iv = implied_volatility(price, forward, strike, years, is_call, rate=0.065)
    if time_value < 1e-9 * forward:
        return  # below double resolution: None is the honest answer, asserted elsewhere
    assert iv is not None
    assert iv == pytest.approx(vol, rel=1e-4)


@pytest.mark.parametrize(
    ("price", "forward", "strike", "years", "is_call", "why"),
    [
        (150.0, 26_000, 26_000, 0.0, True, "at expiry"),
        (150.0, 26_000, 26_000, -0.01, True, "past expiry"),
        (900.0, 26_000, 25_000, 0.02, True, "below intrinsic"),
        (27_000.0, 26_000, 25_000, 0.02, True, "above the forward"),
        (26_500.0, 26_000, 26_500, 0.02, False, "put at the strike"),
        (0.0, 26_000, 27_000, 0.02, True, "zero price"),
        (math.nan, 26_000, 27_000, 0.02, True, "no price"),
        (25_000.0, 26_000, 40_000, 0.02, True, "needs over 1000% volatility"),
    ],
)
def test_failure_is_none_never_nan(
    price: float, forward: float, strike: float, years: float, is_call: bool, why: str
) -> None:
    assert implied_volatility(price, forward, strike, years, is_call, rate=0.065) is None, why


def test_array_form_solves_a_whole_chain_and_marks_failures_nan() -> None:
    strikes = np.arange(23_000.0, 29_001.0, 50.0)
    forward, years = 26_030.0, 3 / 365
    vols = 0.12 + 0.4 * (np.log(strikes / forward)) ** 2
    calls = greeks(forward, strikes, years, vols, True, rate=0.065).value
    ivs = implied_volatility_array(calls, forward, strikes, years, True, rate=0.065)
    solved = ~np.isnan(ivs)
    assert solved[np.abs(strikes - forward) < 1500].all()
    assert np.allclose(ivs[solved], vols[solved], rtol=1e-4)
    bad = calls.copy()
    bad[0] = 1.0  # far below intrinsic of a deep ITM call
    out = implied_volatility_array(bad, forward, strikes, years, True, rate=0.065)
    assert math.isnan(out[0]) and np.allclose(out[1:][solved[1:]], vols[1:][solved[1:]], rtol=1e-4)
