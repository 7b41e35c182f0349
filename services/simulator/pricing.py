"""The price model's formulas: intraday profile, volatility scaling and option values.

Kept free of state so that the live simulator and the synthetic history use the same
numbers: a chart's past bars and its live ticks then move with the same volatility.
"""

from __future__ import annotations

import math
from datetime import datetime

from services.bars import SESSION_SECONDS
from services.clock import MARKET_OPEN, to_ist

TRADING_DAYS = 252
SECONDS_PER_YEAR = 365.0 * 86_400.0  # calendar time, the convention for option expiry
TRADING_SECONDS_PER_YEAR = float(TRADING_DAYS * SESSION_SECONDS)
RISK_FREE_RATE = 0.065  # roughly the 91-day T-bill yield
FUTURES_CARRY = 0.055  # rate less the index dividend yield
_OPEN_SECONDS = MARKET_OPEN.hour * 3600 + MARKET_OPEN.minute * 60
_SQRT2 = math.sqrt(2.0)


def session_fraction(ts: datetime) -> float | None:
    """Return how far into the 09:15-15:30 session ``ts`` is (0..1), or None outside it."""
    local = to_ist(ts)
    secs = local.hour * 3600 + local.minute * 60 + local.second - _OPEN_SECONDS
    if secs < 0 or secs >= SESSION_SECONDS:
        return None
    return secs / SESSION_SECONDS


def intraday_profile(fraction: float | None) -> float:
    """Return the U-shaped activity multiplier, averaging 1 over a session.

    NSE variance and volume are highest just after 09:15 and into the 15:30 close, lowest
    around lunch: 1.8x at the edges, 0.6x at midday. Outside the session (``always_open``
    demos) activity is flat.
    """
    if fraction is None:
        return 1.0
    edge = 2.0 * fraction - 1.0
    return 0.6 + 1.2 * edge * edge


def per_second_variance(annual_volatility: float) -> float:
    """Return the log-return variance per second of trading time."""
    return annual_volatility * annual_volatility / TRADING_SECONDS_PER_YEAR


def norm_cdf(x: float) -> float:
    return 0.5 * (1.0 + math.erf(x / _SQRT2))


def black_scholes(
    spot: float,
    strike: float,
    years: float,
    volatility: float,
    is_call: bool,
    rate: float = RISK_FREE_RATE,
) -> float:
    """Return the European option value, never below intrinsic value against spot.

    NSE index options are European, so a deep in-the-money put can model slightly below
    ``strike - spot``; the floor keeps the simulated book free of a quote a trader would
    read as an arbitrage.
    """
    intrinsic = max(spot - strike, 0.0) if is_call else max(strike - spot, 0.0)
    if years <= 0.0 or volatility <= 0.0:
        return intrinsic
    sd = volatility * math.sqrt(years)
    d1 = (math.log(spot / strike) + (rate + 0.5 * volatility * volatility) * years) / sd
    d2 = d1 - sd
    discount = strike * math.exp(-rate * years)
    if is_call:
        value = spot * norm_cdf(d1) - discount * norm_cdf(d2)
    else:
        value = discount * norm_cdf(-d2) - spot * norm_cdf(-d1)
    return max(value, intrinsic)


_SMILE_SKEW = -0.07  # per standard deviation of moneyness: puts below spot cost more
_SMILE_CURVE = 0.035
_SMILE_MIN_YEARS = 1.0 / (365.0 * 24.0)  # an hour: keeps the wings finite on expiry day


def smile_volatility(atm_volatility: float, forward: float, strike: float, years: float) -> float:
    """Return the volatility a strike trades at: an equity-index smile with a put skew.

    Moneyness is measured in standard deviations to expiry (``ln(K/F) / (sigma sqrt T)``)
    and clipped at four, so the wings stay sensible as expiry nears: a 3-sd put trades at
    about 1.5x the ATM volatility, a 3-sd call at about 1.1x, as NIFTY's smile does.
    """
    sd = atm_volatility * math.sqrt(max(years, _SMILE_MIN_YEARS))
    x = max(-4.0, min(4.0, math.log(strike / forward) / sd))
    return atm_volatility * max(0.6, 1.0 + _SMILE_SKEW * x + _SMILE_CURVE * x * x)


def futures_price(spot: float, years: float) -> float:
    return spot * math.exp(FUTURES_CARRY * max(years, 0.0))
