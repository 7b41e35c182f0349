from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from models.features import BarArrays
from models.synthetic import synthetic_bars
from models.training import (
    BASELINES,
    InsufficientDataError,
    TrainingConfig,
    TrainingResult,
    UnknownModelTypeError,
    make_estimator,
    score,
    train,
    walk_forward_splits,
)
from tests.models.conftest import quick_config


def test_unknown_model_type_is_a_clear_error() -> None:
    with pytest.raises(UnknownModelTypeError, match="random_forest, gradient_boosting"):
        make_estimator("xgboost")
    with pytest.raises(UnknownModelTypeError):
        TrainingConfig("deep_net")


def test_walk_forward_splits_keep_time_order_and_a_gap() -> None:
    splits = walk_forward_splits(1000, train_size=300, test_size=100, gap=5, max_splits=10)
    assert len(splits) == 6
    for train_s, test_s in splits:
        assert train_s.stop - train_s.start == 300
        assert test_s.start - train_s.stop == 5  # labels of the last train rows end here
        assert test_s.stop - test_s.start == 100
    tests = [s[1] for s in splits]
    assert all(a.stop <= b.start for a, b in itertools.pairwise(tests))
    assert len(walk_forward_splits(1000, 300, 100, 5, max_splits=2)) == 2
    with pytest.raises(InsufficientDataError):
        walk_forward_splits(300, 300, 100, 5, 3)


def test_costs_are_charged_on_entry_and_exit() -> None:
    y = np.array([1.0, 0.0, 1.0, 1.0])
    fwd = np.array([0.01, -0.01, 0.02, 0.0])
    p = np.array([0.9, 0.2, 0.7, 0.6])
    free = score(y, p, fwd, horizon=1, cost_bps=0)
    paid = score(y, p, fwd, horizon=1, cost_bps=10)
    assert free.accuracy == 1.0
    assert score(y, 1 - p, fwd, horizon=1, cost_bps=0).net_return == pytest.approx(-0.04)
    assert free.net_return == pytest.approx(0.04)
    assert paid.net_return == pytest.approx(0.04 - 4 * 2 * 0.001)
    assert free.brier == pytest.approx(np.mean((p - y) ** 2))
    # horizon 2: trades at bars 0 and 2 only, so they never overlap
    assert score(y, p, fwd, horizon=2, cost_bps=0).trades == 2


@pytest.mark.parametrize("model_type", ["random_forest", "gradient_boosting",
                                        "logistic_regression"])
def test_every_model_type_reports_metrics_beside_baselines(
    trained: dict[str, TrainingResult], model_type: str
) -> None:
    result = trained[model_type]
    assert set(result.metrics) == {"model", *BASELINES}
    for who in result.metrics.values():
        assert 0 <= who["accuracy"] <= 1
        assert all(math.isfinite(v) for v in who.values())
    assert result.metrics["model"]["n"] == result.metrics["always_up"]["n"] == 600
    assert result.data_start < result.data_end
    assert result.estimator.predict_proba(result.reference[:3]).shape == (3, 2)


def test_a_model_learns_momentum_and_beats_always_up(
    trained: dict[str, TrainingResult],
) -> None:
    m = trained["logistic_regression"].metrics
    assert m["model"]["accuracy"] > m["always_up"]["accuracy"] + 0.03
    assert m["model"]["log_loss"] < math.log(2)


def test_training_reports_progress_and_honours_the_joblib_backend() -> None:
    bars = BarArrays.from_bars(synthetic_bars(1200, seed=5))
    seen: list[tuple[int, int]] = []
    cfg = quick_config("logistic_regression", backend="threading", n_jobs=2)
    result = train(bars, cfg, progress=lambda done, total, msg: seen.append((done, total)))
    total = seen[0][1]
    assert [d for d, _ in seen] == list(range(total + 1))
    assert len(result.folds) == total - 1
    with pytest.raises(ValueError, match=r"not a registered|backend"):
        train(bars, quick_config("logistic_regression", backend="no-such-backend"))
