"""Features computed from bars with no look-ahead.

Every feature at bar ``t`` is a function of bars ``0..t`` only: rolling statistics use
per-window computations (``sliding_window_view``) rather than cumulative sums of the whole
series, and moving averages are plain causal recursions. ``tests/models/test_features.py``
proves it by perturbing all bars after ``t`` and checking that rows up to ``t`` are
bit-identical. Rows without enough history are NaN; training drops them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from services.clock import IST
from services.domain import Bar

FloatArray = npt.NDArray[np.float64]

RETURN_HORIZONS = (1, 5, 20)
VOL_WINDOW = 20
RSI_PERIOD = 14
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9
VOLUME_WINDOW = 20

FEATURE_NAMES: tuple[str, ...] = (
    *(f"ret_{h}" for h in RETURN_HORIZONS),
    f"vol_{VOL_WINDOW}",
    f"rsi_{RSI_PERIOD}",
    "macd",
    "macd_hist",
    f"volume_z_{VOLUME_WINDOW}",
    "tod_sin",
    "tod_cos",
)

# Bars needed before every feature is defined (the slow EMA plus its signal line).
WARMUP = MACD_SLOW + MACD_SIGNAL


@dataclass(frozen=True, slots=True)
class BarArrays:
    """OHLCV columns of one symbol's bars, converted once from ``Bar`` records.

    Prices become float64 here on purpose: features are statistics, not money.
    """

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray
    timestamp: npt.NDArray[np.int64]  # epoch seconds of each bar's start
    minute_of_day: FloatArray  # IST minutes since midnight of each bar's start

    def __len__(self) -> int:
        return len(self.close)

    @classmethod
    def from_bars(cls, bars: Sequence[Bar]) -> BarArrays:
        if not bars:
            raise ValueError("no bars")
        keys = {b.key for b in bars}
        if len(keys) > 1:
            raise ValueError(f"bars of several instruments mixed: {sorted(keys)}")
        starts = [b.start for b in bars]
        if any(s.tzinfo is None for s in starts):
            raise ValueError("bar start times must be timezone-aware")
        ts = np.array([int(s.timestamp()) for s in starts], dtype=np.int64)
        if np.any(np.diff(ts) <= 0):
            raise ValueError("bars must be in strictly increasing time order")
        local = [s.astimezone(IST) for s in starts]
        return cls(
            open=np.array([float(b.open) for b in bars]),
            high=np.array([float(b.high) for b in bars]),
            low=np.array([float(b.low) for b in bars]),
            close=np.array([float(b.close) for b in bars]),
            volume=np.array([float(b.volume) for b in bars]),
            timestamp=ts,
            minute_of_day=np.array([t.hour * 60 + t.minute + t.second / 60 for t in local]),
        )

    def head(self, n: int) -> BarArrays:
        """The first ``n`` bars (what was known at bar ``n - 1``)."""
        return BarArrays(
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
            self.timestamp[:n],
            self.minute_of_day[:n],
        )


def feature_hash(names: Sequence[str]) -> str:
    """Identifies a feature list (and its order): a model only accepts rows built the same way."""
    return hashlib.sha256("\n".join(names).encode()).hexdigest()


def _log_returns(close: FloatArray, horizon: int) -> FloatArray:
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        out[horizon:] = np.log(close[horizon:] / close[:-horizon])
    return out


def _rolling(x: FloatArray, window: int, stat: str) -> FloatArray:
    out = np.full(len(x), np.nan)
    if len(x) >= window:
        view = np.lib.stride_tricks.sliding_window_view(x, window)
        out[window - 1 :] = view.std(axis=1, ddof=1) if stat == "std" else view.mean(axis=1)
    return out


def _ema(x: FloatArray, span: int, *, alpha: float | None = None) -> FloatArray:
    """Causal exponential average, seeded with the mean of the first ``span`` valid values."""
    a = 2.0 / (span + 1) if alpha is None else alpha
    out = np.full(len(x), np.nan)
    valid = np.flatnonzero(~np.isnan(x))
    if len(valid) < span:
        return out
    first = valid[0]
    seed_at = first + span - 1
    if np.isnan(x[first : seed_at + 1]).any():
        return out
    value = float(np.mean(x[first : seed_at + 1]))
    out[seed_at] = value
    for i in range(seed_at + 1, len(x)):
        value = value + a * (float(x[i]) - value)
        out[i] = value
    return out


def _rsi(close: FloatArray, period: int) -> FloatArray:
    delta = np.full(len(close), np.nan)
    delta[1:] = np.diff(close)
    gain = np.where(np.isnan(delta), np.nan, np.maximum(delta, 0.0))
    loss = np.where(np.isnan(delta), np.nan, np.maximum(-delta, 0.0))
    avg_gain = _ema(gain, period, alpha=1.0 / period)  # Wilder's smoothing
    avg_loss = _ema(loss, period, alpha=1.0 / period)
    with np.errstate(divide="ignore", invalid="ignore"):
        total = avg_gain + avg_loss
        rsi = np.where(total > 0, 100.0 * avg_gain / total, 50.0)
    rsi[np.isnan(avg_gain)] = np.nan
    return rsi


def compute_features(bars: BarArrays) -> FloatArray:
    """One row per bar, columns in ``FEATURE_NAMES`` order; NaN while history is too short."""
    close = bars.close
    columns = [_log_returns(close, h) for h in RETURN_HORIZONS]
    columns.append(_rolling(_log_returns(close, 1), VOL_WINDOW, "std"))
    columns.append(_rsi(close, RSI_PERIOD))
    macd = (_ema(close, MACD_FAST) - _ema(close, MACD_SLOW)) / close
    signal = _ema(macd, MACD_SIGNAL)
    columns.append(np.where(np.isnan(signal), np.nan, macd))
    columns.append(macd - signal)
    log_volume = np.log1p(bars.volume)
    mean = _rolling(log_volume, VOLUME_WINDOW, "mean")
    std = _rolling(log_volume, VOLUME_WINDOW, "std")
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(std > 0, (log_volume - mean) / std, 0.0)
    z[np.isnan(mean)] = np.nan
    columns.append(z)
    angle = 2.0 * np.pi * bars.minute_of_day / 1440.0
    columns.extend([np.sin(angle), np.cos(angle)])
    return np.column_stack(columns)


def latest_features(bars: BarArrays) -> FloatArray:
    """The feature row for the last bar: what live inference scores when a bar closes."""
    row: FloatArray = compute_features(bars)[-1]
    return row
