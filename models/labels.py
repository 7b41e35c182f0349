"""Labels: did the price go up over the next ``horizon`` bars?

The last ``horizon`` bars have no label yet (NaN): their future is unknown, and filling it
would leak. A flat move counts as "not up".
"""

from __future__ import annotations

import numpy as np

from models.features import FloatArray


def forward_log_returns(close: FloatArray, horizon: int) -> FloatArray:
    if horizon < 1:
        raise ValueError(f"label horizon must be at least 1 bar, got {horizon}")
    out = np.full(len(close), np.nan)
    if len(close) > horizon:
        out[:-horizon] = np.log(close[horizon:] / close[:-horizon])
    return out


def direction_labels(close: FloatArray, horizon: int) -> FloatArray:
    """1.0 if close[t + horizon] > close[t], 0.0 otherwise, NaN where t + horizon is unknown."""
    fwd = forward_log_returns(close, horizon)
    return np.where(np.isnan(fwd), np.nan, (fwd > 0).astype(np.float64))
