"""Chart studies beyond the moving averages: VWAP, Bollinger, RSI, MACD and Supertrend.

Plain numpy over float64 columns (drawn, not traded on), NaN where a window has too little
data. The recursive ones (Wilder's RSI and ATR, EMA chains, Supertrend's bands) loop over
Python floats: ~30 ms for 100,000 bars, paid on ``set_bars`` and at most once a second live.
Definitions follow the originals: Wilder (1978) for RSI and ATR, Appel for MACD, Bollinger
(20, 2) with the population standard deviation, Supertrend on the (high + low) / 2 median.
"""

from __future__ import annotations

import math

import numpy as np

from widgets.chart.indicators import FloatArray, ema, sma

_IST_OFFSET = 19_800


def vwap(
    high: FloatArray, low: FloatArray, close: FloatArray, volume: FloatArray, starts: FloatArray
) -> FloatArray:
    """Session VWAP of the typical price, restarting each IST day."""
    typical = (high + low + close) / 3.0
    pv = np.cumsum(typical * volume)
    vol = np.cumsum(volume)
    day = ((starts + _IST_OFFSET) // 86_400).astype(np.int64)
    first = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    index = np.repeat(first, np.diff(np.concatenate((first, [len(day)]))))
    base_pv = np.where(index > 0, pv[np.maximum(index - 1, 0)], 0.0)
    base_v = np.where(index > 0, vol[np.maximum(index - 1, 0)], 0.0)
    session_v = vol - base_v
    with np.errstate(invalid="ignore", divide="ignore"):
        out: FloatArray = np.where(session_v > 0, (pv - base_pv) / session_v, typical)
    return out


def bollinger(close: FloatArray, n: int = 20, k: float = 2.0) -> tuple[FloatArray, ...]:
    """(middle, upper, lower): SMA n and k population standard deviations either side."""
    mid = sma(close, n)
    sd = np.full(close.shape, np.nan)
    if close.size >= n:
        sd[n - 1 :] = np.lib.stride_tricks.sliding_window_view(close, n).std(axis=1)
    return mid, mid + k * sd, mid - k * sd


def _wilder(values: FloatArray, n: int, start: int) -> FloatArray:
    """Wilder's smoothing from index ``start`` (seeded by the mean of the first n)."""
    out = np.full(values.shape, np.nan)
    if values.size < start + n:
        return out
    prev = float(values[start : start + n].mean())
    out[start + n - 1] = prev
    tail = values[start + n :].tolist()
    res = [0.0] * len(tail)
    for i, v in enumerate(tail):
        prev = (prev * (n - 1) + v) / n
        res[i] = prev
    out[start + n :] = res
    return out


def rsi(close: FloatArray, n: int = 14) -> FloatArray:
    """Wilder's RSI, 0-100."""
    delta = np.diff(close, prepend=np.nan)
    gain = np.where(delta > 0, delta, 0.0)
    loss = np.where(delta < 0, -delta, 0.0)
    avg_gain = _wilder(gain, n, 1)
    avg_loss = _wilder(loss, n, 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        rs = avg_gain / avg_loss
        out: FloatArray = np.where(avg_loss == 0, 100.0, 100.0 - 100.0 / (1.0 + rs))
    out[np.isnan(avg_gain)] = np.nan
    return out


def macd(
    close: FloatArray, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """(macd, signal, histogram)."""
    line = ema(close, fast) - ema(close, slow)
    sig = np.full(close.shape, np.nan)
    valid = np.flatnonzero(~np.isnan(line))
    if valid.size:
        sig[valid[0] :] = ema(line[valid[0] :], signal)
    return line, sig, line - sig


def atr(high: FloatArray, low: FloatArray, close: FloatArray, n: int = 14) -> FloatArray:
    prev = np.concatenate(([np.nan], close[:-1]))
    tr = np.nanmax(np.stack([high - low, np.abs(high - prev), np.abs(low - prev)]), axis=0)
    return _wilder(tr, n, 0)


def supertrend(
    high: FloatArray, low: FloatArray, close: FloatArray, n: int = 10, mult: float = 3.0
) -> tuple[FloatArray, FloatArray]:
    """(line, direction): the trailing band and +1 (up-trend) / -1 (down-trend)."""
    size = close.size
    line = np.full(size, np.nan)
    direction = np.zeros(size)
    a = atr(high, low, close, n)
    mid = (high + low) / 2.0
    upper_basic = (mid + mult * a).tolist()
    lower_basic = (mid - mult * a).tolist()
    c = close.tolist()
    upper = lower = math.nan
    trend = 1.0
    for i in range(size):
        ub, lb = upper_basic[i], lower_basic[i]
        if math.isnan(ub):
            continue
        if math.isnan(upper):
            upper, lower = ub, lb
        else:
            upper = ub if ub < upper or c[i - 1] > upper else upper
            lower = lb if lb > lower or c[i - 1] < lower else lower
        if trend > 0 and c[i] < lower:
            trend = -1.0
        elif trend < 0 and c[i] > upper:
            trend = 1.0
        line[i] = lower if trend > 0 else upper
        direction[i] = trend
    return line, direction
