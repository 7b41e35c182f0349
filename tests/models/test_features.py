from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from decimal import Decimal

import numpy as np
import pytest

from models.features import FEATURE_NAMES, WARMUP, BarArrays, compute_features, feature_hash
from models.labels import direction_labels
from models.synthetic import synthetic_bars
from services.clock import IST


def _perturb_after(bars: list, t: int, seed: int) -> list:
    rng = np.random.default_rng(seed)
    out = list(bars[: t + 1])
    for b in bars[t + 1 :]:
        f = Decimal(str(round(float(rng.uniform(0.5, 2.0)), 3)))
        out.append(replace(b, open=b.open * f, high=b.high * f * 2, low=b.low * f / 2,
                           close=b.close * f, volume=int(rng.integers(1, 10**9))))
    return out


@pytest.mark.parametrize("t", [WARMUP, 137, 398])
def test_features_at_t_ignore_every_later_bar(t: int) -> None:
    bars = synthetic_bars(400, seed=3)
    base = compute_features(BarArrays.from_bars(bars))
    moved = compute_features(BarArrays.from_bars(_perturb_after(bars, t, seed=t)))
    # bit-identical up to t, and the perturbation really changed the rows after t
    assert base[: t + 1].tobytes() == moved[: t + 1].tobytes()
    if t + 1 < len(bars):
        assert not np.array_equal(base[t + 1 :], moved[t + 1 :], equal_nan=True)


def test_rows_are_complete_after_warmup_only() -> None:
    X = compute_features(BarArrays.from_bars(synthetic_bars(200)))
    assert X.shape == (200, len(FEATURE_NAMES))
    assert np.isnan(X[0]).any()
    assert np.isfinite(X[WARMUP:]).all()


def test_time_of_day_is_ist() -> None:
    bars = synthetic_bars(3)
    a = BarArrays.from_bars(bars)
    assert bars[0].start == datetime(2026, 1, 5, 9, 15, tzinfo=IST)
    assert a.minute_of_day[0] == 9 * 60 + 15
    X = compute_features(a)
    j = FEATURE_NAMES.index("tod_sin")
    assert X[0, j] == pytest.approx(np.sin(2 * np.pi * 555 / 1440))


def test_bad_bar_sequences_are_refused() -> None:
    bars = synthetic_bars(5)
    with pytest.raises(ValueError, match="increasing"):
        BarArrays.from_bars([bars[1], bars[0]])
    with pytest.raises(ValueError, match="several instruments"):
        BarArrays.from_bars([bars[0], replace(bars[1], key="NSE:OTHER")])
    with pytest.raises(ValueError, match="timezone"):
        BarArrays.from_bars([replace(bars[0], start=bars[0].start.replace(tzinfo=None))])
    with pytest.raises(ValueError, match="no bars"):
        BarArrays.from_bars([])


def test_direction_labels_leave_the_unknown_future_nan() -> None:
    close = np.array([10.0, 11.0, 11.0, 9.0, 12.0])
    y = direction_labels(close, 2)
    assert y[:3].tolist() == [1.0, 0.0, 1.0]
    assert np.isnan(y[3:]).all()
    with pytest.raises(ValueError):
        direction_labels(close, 0)


def test_feature_hash_depends_on_names_and_order() -> None:
    assert feature_hash(FEATURE_NAMES) == feature_hash(list(FEATURE_NAMES))
    assert feature_hash(FEATURE_NAMES) != feature_hash(tuple(reversed(FEATURE_NAMES)))
