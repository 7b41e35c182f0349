"""Implied volatility that never returns NaN to a trader: a value, or None.

The solver works on the *out-of-the-money* side of each strike (an in-the-money price is
turned into its OTM twin by put-call parity on the forward), because an ITM option's time
value is a small difference of large numbers and its vega is tiny. It then runs a Newton
iteration from the Manaster-Koehler start (the volatility of greatest vega, from which
Newton is monotone for a Black call) inside a bisection bracket, so a step that leaves the
bracket is replaced by bisection and every element converges or is declared unsolvable.

Unsolvable means: at or past expiry, a price at or below intrinsic value, a price at or
above the no-arbitrage ceiling, a time value below floating-point resolution, or a
volatility above ``MAX_VOLATILITY``. Those come back as NaN from the array function and as
``None`` from the scalar one; the option chain renders them as "—".
"""

from __future__ import annotations

import math

import numpy as np

from services.options.pricing import (
    ArrayLike,
    BoolArray,
    FloatArray,
    Model,
    _carry,
    norm_cdf,
    norm_pdf,
)

MIN_VOLATILITY = 1e-4
MAX_VOLATILITY = 10.0  # 1000% a year: anything above is a bad print, not a volatility
_MAX_ITERATIONS = 100
_REL_TOL = 1e-9
_BRACKET_TOL = 1e-10
_GRID = np.geomspace(0.01, MAX_VOLATILITY, 14)


def _otm_value_and_vega(
    f: FloatArray, k: FloatArray, sd: FloatArray, sqrt_t: FloatArray, sign: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Undiscounted Black value of the OTM side (``sign`` +1 call, -1 put) and its vega."""
    d1 = (np.log(f / k) + 0.5 * sd * sd) / sd
    d2 = d1 - sd
    value = sign * (f * norm_cdf(sign * d1) - k * norm_cdf(sign * d2))
    return value, f * norm_pdf(d1) * sqrt_t


def implied_volatility_array(
    price: ArrayLike,
    underlying: ArrayLike,
    strike: ArrayLike,
    years: ArrayLike,
    is_call: BoolArray | bool,
    *,
    rate: float,
    model: Model = Model.BLACK_76,
    dividend_yield: float = 0.0,
) -> FloatArray:
    """Return the annualised implied volatility per element, NaN where there is none."""
    p = np.asarray(price, dtype=np.float64)
    u = np.asarray(underlying, dtype=np.float64)
    k = np.asarray(strike, dtype=np.float64)
    t = np.asarray(years, dtype=np.float64)
    call = np.asarray(is_call, dtype=np.bool_)
    p, u, k, t, call = np.broadcast_arrays(p, u, k, t, call)
    shape = p.shape
    p, u, k, t = (a.ravel() for a in (p, u, k, t))
    call = call.ravel()

    b = _carry(model, rate, dividend_yield)
    ok = (t > 0.0) & (u > 0.0) & (k > 0.0) & np.isfinite(p) & (p > 0.0)
    t_safe = np.where(ok, t, 1.0)
    u_safe = np.where(ok, u, 1.0)
    k_safe = np.where(ok, k, 1.0)
    f = u_safe * np.exp(b * t_safe)
    undiscounted = np.where(ok, p, 0.0) * np.exp(rate * t_safe)
    # The OTM twin's undiscounted value: a call's OTM twin is the put when F > K.
    otm_call = f <= k_safe
    as_call = np.where(call, undiscounted, undiscounted + (f - k_safe))
    target = np.where(otm_call, as_call, as_call - (f - k_safe))
    ceiling = np.where(otm_call, f, k_safe)
    ok &= (target > 1e-12 * f) & (target < ceiling)

    sqrt_t = np.sqrt(t_safe)
    sign = np.where(otm_call, 1.0, -1.0)
    converged = np.zeros_like(ok)
    result = np.full_like(target, np.nan)

    # Bracket every element on a coarse volatility grid in one 2-D pass, then start Newton
    # from the log-value interpolation inside its bracket: 3-5 steps then suffice even far
    # from the money, where a single start guess can be off by orders of magnitude in value.
    idx = np.flatnonzero(ok)
    f_a, k_a, t_a, s_a, x_a = f[idx], k_safe[idx], sqrt_t[idx], sign[idx], target[idx]
    grid_values, _ = _otm_value_and_vega(
        f_a[:, None], k_a[:, None], _GRID[None, :] * t_a[:, None], t_a[:, None], s_a[:, None]
    )
    above_grid = grid_values >= x_a[:, None]
    j = np.where(above_grid.any(axis=1), above_grid.argmax(axis=1), _GRID.size)
    inside_grid = j < _GRID.size  # beyond the top the volatility exceeds MAX_VOLATILITY
    idx, j = idx[inside_grid], j[inside_grid]
    f_a, k_a, t_a = f_a[inside_grid], k_a[inside_grid], t_a[inside_grid]
    s_a, x_a = s_a[inside_grid], x_a[inside_grid]
    rows = np.arange(idx.size)
    lo = np.where(j > 0, _GRID[np.maximum(j - 1, 0)], MIN_VOLATILITY)
    hi = _GRID[j]
    v_lo = np.where(j > 0, grid_values[inside_grid][rows, np.maximum(j - 1, 0)], 0.0)
    v_hi = grid_values[inside_grid][rows, j]
    with np.errstate(divide="ignore", invalid="ignore"):
        ln_lo = np.log(np.maximum(v_lo, 1e-300))
        frac = (np.log(x_a) - ln_lo) / (np.log(np.maximum(v_hi, 1e-300)) - ln_lo)
    sig = lo + np.clip(np.nan_to_num(frac, nan=0.5), 0.05, 0.95) * (hi - lo)

    for _ in range(_MAX_ITERATIONS):
        if idx.size == 0:
            break
        value, vega = _otm_value_and_vega(f_a, k_a, sig * t_a, t_a, s_a)
        diff = value - x_a
        done = (np.abs(diff) <= _REL_TOL * x_a) | ((hi - lo) <= _BRACKET_TOL)
        if done.any():
            result[idx[done]] = sig[done]
            converged[idx[done]] = True
            keep = ~done
            idx = idx[keep]
            f_a, k_a, t_a, s_a, x_a = f_a[keep], k_a[keep], t_a[keep], s_a[keep], x_a[keep]
            sig, lo, hi, diff, vega, value = (a[keep] for a in (sig, lo, hi, diff, vega, value))
            if idx.size == 0:
                break
        above = diff > 0.0
        hi = np.where(above, sig, hi)
        lo = np.where(above, lo, sig)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Newton on the log of the value: the tail value is ~exp(-d^2/2), whose log is
            # close to linear in volatility where the value itself is anything but.
            log_step = (np.log(value) - np.log(x_a)) * value / vega
            newton = sig - log_step
        inside = np.isfinite(newton) & (newton > lo) & (newton < hi)
        sig = np.where(inside, newton, 0.5 * (lo + hi))

    with np.errstate(invalid="ignore"):
        solved = converged & (result < MAX_VOLATILITY * 0.999) & (result > MIN_VOLATILITY * 1.001)
    out: FloatArray = np.where(solved, result, np.nan).reshape(shape)
    return out


def implied_volatility(
    price: float,
    underlying: float,
    strike: float,
    years: float,
    is_call: bool,
    *,
    rate: float,
    model: Model = Model.BLACK_76,
    dividend_yield: float = 0.0,
) -> float | None:
    """Scalar form: the implied volatility, or None when the price admits none."""
    iv = float(
        implied_volatility_array(
            price,
            underlying,
            strike,
            years,
            is_call,
            rate=rate,
            model=model,
            dividend_yield=dividend_yield,
        )
    )
    return None if math.isnan(iv) else iv
