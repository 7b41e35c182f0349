"""Model types, walk-forward evaluation beside baselines, and the final fit.

Walk-forward: train on a window, test on the next one, roll forward, never look back. A gap of
``horizon`` bars separates each training window from its test window: the last training labels
look ``horizon`` bars ahead, so without the gap they would overlap the test period.

Every metric is reported beside two baselines a model must beat to be worth anything:
"always up" and "same direction as the previous bar". Trading returns charge ``cost_bps`` on
entry and on exit of every trade.

scikit-learn and joblib are imported inside functions: this module is imported by the CLI.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from models.features import FEATURE_NAMES, BarArrays, FloatArray, compute_features
from models.labels import direction_labels, forward_log_returns

MODEL_TYPES: tuple[str, ...] = ("random_forest", "gradient_boosting", "logistic_regression")
BASELINES: tuple[str, ...] = ("always_up", "previous_direction")
PROB_CLIP = 1e-6

Progress = Callable[[int, int, str], None]  # (done, total, message)


class UnknownModelTypeError(ValueError):
    def __init__(self, model_type: str) -> None:
        super().__init__(
            f"unknown model type {model_type!r}; choose one of {', '.join(MODEL_TYPES)}"
        )


class InsufficientDataError(ValueError):
    pass


def check_model_type(model_type: str) -> str:
    if model_type not in MODEL_TYPES:
        raise UnknownModelTypeError(model_type)
    return model_type


def make_estimator(
    model_type: str, params: Mapping[str, Any] | None = None, random_state: int = 0
) -> Any:
    """A fresh, unfitted classifier. ``params`` override our defaults (small and fast)."""
    check_model_type(model_type)
    extra = dict(params or {})
    if model_type == "random_forest":
        from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped,unused-ignore]

        kw: dict[str, Any] = {
            "n_estimators": 100, "max_depth": 8, "min_samples_leaf": 20, "n_jobs": 1,
            "random_state": random_state,
        }
        return RandomForestClassifier(**{**kw, **extra})
    if model_type == "gradient_boosting":
        from sklearn.ensemble import HistGradientBoostingClassifier  # type: ignore[import-untyped,unused-ignore]

        kw = {"max_iter": 100, "learning_rate": 0.05, "max_leaf_nodes": 15,
              "random_state": random_state}
        return HistGradientBoostingClassifier(**{**kw, **extra})
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped,unused-ignore]
    from sklearn.pipeline import make_pipeline  # type: ignore[import-untyped,unused-ignore]
    from sklearn.preprocessing import StandardScaler  # type: ignore[import-untyped,unused-ignore]

    kw = {"max_iter": 1000, "C": 1.0}
    return make_pipeline(StandardScaler(), LogisticRegression(**{**kw, **extra}))


@dataclass(frozen=True, slots=True)
class TrainingConfig:
    model_type: str
    horizon: int = 1
    train_size: int = 1000
    test_size: int = 250
    max_splits: int = 5
    cost_bps: float = 5.0
    params: Mapping[str, Any] = field(default_factory=dict)
    random_state: int = 0
    # joblib: "loky", "threading", or a registered cluster backend ("dask", "ray").
    backend: str = "loky"
    n_jobs: int = 1
    backend_params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_model_type(self.model_type)
        if self.horizon < 1 or self.train_size < 50 or self.test_size < 10:
            raise ValueError("horizon >= 1, train_size >= 50 and test_size >= 10 are required")
        if self.cost_bps < 0:
            raise ValueError("cost_bps cannot be negative")


@dataclass(frozen=True, slots=True)
class Dataset:
    """Feature rows with their labels, forward returns and previous-bar direction."""

    X: FloatArray
    y: FloatArray
    forward_return: FloatArray
    previous_up: FloatArray
    timestamp: np.ndarray[Any, np.dtype[np.int64]]
    feature_names: tuple[str, ...] = FEATURE_NAMES

    def __len__(self) -> int:
        return len(self.y)


def build_dataset(bars: BarArrays, horizon: int) -> Dataset:
    """Rows where every feature and the label are known; order in time is kept."""
    X = compute_features(bars)
    y = direction_labels(bars.close, horizon)
    fwd = forward_log_returns(bars.close, horizon)
    prev = np.full(len(bars), np.nan)
    prev[1:] = (np.diff(bars.close) > 0).astype(np.float64)
    keep = ~np.isnan(X).any(axis=1) & ~np.isnan(y) & ~np.isnan(prev)
    return Dataset(X[keep], y[keep], fwd[keep], prev[keep], bars.timestamp[keep])


def walk_forward_splits(
    n: int, train_size: int, test_size: int, gap: int, max_splits: int
) -> list[tuple[slice, slice]]:
    """Rolling (train, test) windows in time order, the most recent ``max_splits`` of them."""
    splits: list[tuple[slice, slice]] = []
    start = 0
    while start + train_size + gap + test_size <= n:
        train = slice(start, start + train_size)
        test_start = start + train_size + gap
        splits.append((train, slice(test_start, test_start + test_size)))
        start += test_size
    if not splits:
        raise InsufficientDataError(
            f"{n} usable rows cannot hold one walk-forward split of train {train_size} + "
            f"gap {gap} + test {test_size}"
        )
    return splits[-max_splits:]


@dataclass(frozen=True, slots=True)
class Scores:
    accuracy: float
    log_loss: float
    brier: float
    net_return: float  # sum of non-overlapping trade log-returns after costs
    trades: int
    n: int

    def as_dict(self) -> dict[str, float]:
        return {
            "accuracy": self.accuracy, "log_loss": self.log_loss, "brier": self.brier,
            "net_return": self.net_return, "trades": float(self.trades), "n": float(self.n),
        }


def score(
    y: FloatArray, prob_up: FloatArray, forward_return: FloatArray, horizon: int, cost_bps: float
) -> Scores:
    """Accuracy, log loss, Brier score and the net return of trading the signal.

    Trading: at every ``horizon``-th bar (so trades do not overlap) go long if the probability
    of up is above 0.5, short otherwise, hold ``horizon`` bars, and pay ``cost_bps`` on entry
    and again on exit.
    """
    p = np.clip(prob_up, PROB_CLIP, 1 - PROB_CLIP)
    predicted_up = prob_up > 0.5
    accuracy = float(np.mean(predicted_up == (y == 1.0)))
    log_loss = float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    brier = float(np.mean((prob_up - y) ** 2))
    idx = np.arange(0, len(y), horizon)
    position = np.where(predicted_up[idx], 1.0, -1.0)
    cost = 2 * cost_bps / 10_000
    net = float(np.sum(position * forward_return[idx]) - cost * len(idx))
    return Scores(accuracy, log_loss, brier, net, len(idx), len(y))


def baseline_probabilities(train: Dataset, test: Dataset) -> dict[str, FloatArray]:
    """Baseline probabilities, calibrated on the training window only.

    always_up: always predicts up, with the training up-rate as its probability (kept above 0.5
    so that its direction stays "up"). previous_direction: predicts the previous bar's
    direction, with the training hit rate of that rule as its confidence.
    """
    up_rate = float(np.mean(train.y))
    always = np.full(len(test), max(up_rate, 0.5 + 1e-9))
    hit = float(np.mean(train.previous_up == train.y))
    prev = np.where(test.previous_up == 1.0, hit, 1.0 - hit)
    return {"always_up": always, "previous_direction": prev}


def _subset(d: Dataset, s: slice) -> Dataset:
    return Dataset(d.X[s], d.y[s], d.forward_return[s], d.previous_up[s], d.timestamp[s],
                   d.feature_names)


def _positive_column(estimator: Any) -> int:
    classes = list(estimator.classes_)
    return classes.index(1.0) if 1.0 in classes else -1


def predict_up(estimator: Any, X: FloatArray) -> FloatArray:
    """Probability of the "up" class; a model that only ever saw one class gives 0 or 1."""
    col = _positive_column(estimator)
    if col < 0:
        return np.zeros(len(X))
    proba: FloatArray = estimator.predict_proba(X)[:, col]
    return proba


def _fit_fold(
    config: TrainingConfig, train: Dataset, test: Dataset
) -> dict[str, dict[str, float]]:
    est = make_estimator(config.model_type, config.params, config.random_state)
    est.fit(train.X, train.y)
    out = {"model": score(test.y, predict_up(est, test.X), test.forward_return, config.horizon,
                          config.cost_bps).as_dict()}
    for name, p in baseline_probabilities(train, test).items():
        out[name] = score(test.y, p, test.forward_return, config.horizon,
                          config.cost_bps).as_dict()
    return out


def _aggregate(folds: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, dict[str, float]]:
    """Pool the folds: rates weighted by fold size, returns and counts summed."""
    out: dict[str, dict[str, float]] = {}
    for who in ("model", *BASELINES):
        rows = [f[who] for f in folds]
        n = sum(r["n"] for r in rows)
        out[who] = {
            k: sum(r[k] * r["n"] for r in rows) / n for k in ("accuracy", "log_loss", "brier")
        }
        out[who]["net_return"] = sum(r["net_return"] for r in rows)
        out[who]["trades"] = sum(r["trades"] for r in rows)
        out[who]["n"] = n
    return out


@dataclass(frozen=True, slots=True)
class TrainingResult:
    config: TrainingConfig
    estimator: Any
    feature_names: tuple[str, ...]
    metrics: dict[str, dict[str, float]]  # "model" and each baseline: pooled walk-forward scores
    folds: list[dict[str, dict[str, float]]]
    data_start: datetime
    data_end: datetime
    n_rows: int
    reference: FloatArray  # training feature rows: the reference for drift monitoring

    @property
    def beats_baselines(self) -> bool:
        acc = self.metrics["model"]["accuracy"]
        return all(acc > self.metrics[b]["accuracy"] for b in BASELINES)


def _noop(done: int, total: int, message: str) -> None:
    pass


def train(
    bars: BarArrays, config: TrainingConfig, progress: Progress = _noop
) -> TrainingResult:
    """Walk-forward evaluation, then a final fit on the latest ``train_size`` rows.

    Blocking and CPU-bound: call it from a worker thread (or process), never the event loop.
    Folds run through joblib under ``parallel_config(backend=config.backend)``, so a dask or
    ray cluster backend can be plugged in by configuration once it is registered.
    """
    import joblib  # type: ignore[import-untyped,unused-ignore]

    data = build_dataset(bars, config.horizon)
    splits = walk_forward_splits(
        len(data), config.train_size, config.test_size, config.horizon, config.max_splits
    )
    total = len(splits) + 1
    progress(0, total, f"walk-forward: {len(splits)} folds on {len(data)} rows")
    folds: list[dict[str, dict[str, float]]] = []
    with joblib.parallel_config(
        backend=config.backend, n_jobs=config.n_jobs, **dict(config.backend_params)
    ):
        runner = joblib.Parallel(return_as="generator")
        jobs = (
            joblib.delayed(_fit_fold)(config, _subset(data, tr), _subset(data, te))
            for tr, te in splits
        )
        for fold in runner(jobs):
            folds.append(fold)
            progress(len(folds), total, f"fold {len(folds)}/{len(splits)} done")
    final = _subset(data, slice(max(0, len(data) - config.train_size), len(data)))
    estimator = make_estimator(config.model_type, config.params, config.random_state)
    estimator.fit(final.X, final.y)
    progress(total, total, "final model fitted")
    return TrainingResult(
        config=config,
        estimator=estimator,
        feature_names=data.feature_names,
        metrics=_aggregate(folds),
        folds=folds,
        data_start=datetime.fromtimestamp(int(final.timestamp[0]), UTC),
        data_end=datetime.fromtimestamp(int(final.timestamp[-1]), UTC),
        n_rows=len(final),
        reference=final.X,
    )


def finite(metrics: Mapping[str, Mapping[str, float]]) -> bool:
    return all(math.isfinite(v) for m in metrics.values() for v in m.values())
