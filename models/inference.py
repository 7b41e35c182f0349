"""Embedded inference: lazily loaded models scoring numpy rows on one dedicated thread.

Measured on the 2-core target (research/ml_headless.md): ``n_jobs=-1`` made a forest 6x slower
per row, HistGradientBoosting's default OpenMP threads gave a p99 of ~40 ms, and a one-row
DataFrame adds ~0.5 ms. So models are scored on float64 numpy rows, with ``n_jobs=1`` set on
every estimator at load and BLAS/OpenMP limited to one thread in the worker thread. Callers on
the event loop use ``await engine.predict(...)``: the work runs in the engine's executor.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np

from models.features import FloatArray
from models.registry import LoadedModel, ModelRecord

log = logging.getLogger(__name__)

T = TypeVar("T")
Features = Mapping[str, float] | FloatArray
Loader = Callable[[str, int], LoadedModel]


class FastScorer(Protocol):
    def prob_up(self, X: FloatArray) -> FloatArray: ...


# (model id, version, column of "up") -> a verified ONNX scorer, or None to use scikit-learn.
FastSource = Callable[[str, int, int], FastScorer | None]


class MissingFeaturesError(ValueError):
    """The row does not carry every feature the model was trained on."""


@dataclass(frozen=True, slots=True)
class Prediction:
    model_id: str
    version: int
    prob_up: float
    confidence: float  # |2p - 1|: 0 is a coin flip, 1 is certainty
    latency_s: float

    @property
    def direction(self) -> int:
        return 1 if self.prob_up > 0.5 else -1


def limit_threads() -> None:
    """Make the calling thread a single-threaded inference thread (BLAS, OpenMP, sklearn)."""
    import sklearn  # type: ignore[import-untyped,unused-ignore]
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped,unused-ignore]

    threadpool_limits(1)
    # We check finiteness ourselves; sklearn's per-call check is a large share of a row's cost.
    sklearn.set_config(assume_finite=True)


def single_threaded(estimator: Any) -> Any:
    """Set every ``n_jobs`` parameter (including nested pipeline steps) to 1."""
    if hasattr(estimator, "get_params"):
        updates = {k: 1 for k in estimator.get_params(deep=True) if k.endswith("n_jobs")}
        if updates:
            estimator.set_params(**updates)
    return estimator


def _forest_trees(estimator: Any) -> list[Any]:
    """The low-level trees of a single-output random forest, or [] for any other model."""
    from sklearn.ensemble import RandomForestClassifier  # type: ignore[import-untyped,unused-ignore]

    if isinstance(estimator, RandomForestClassifier) and estimator.n_outputs_ == 1:
        return [t.tree_ for t in estimator.estimators_]
    return []


class Predictor:
    """One loaded model version: turns feature rows into probabilities of "up"."""

    def __init__(self, loaded: LoadedModel, fast: FastScorer | None = None) -> None:
        self.record: ModelRecord = loaded.record
        self.estimator = single_threaded(loaded.estimator)
        classes = list(getattr(self.estimator, "classes_", []))
        if 1.0 not in classes:
            raise ValueError(f"{self.record.label} was never trained on an 'up' example")
        self._col = classes.index(1.0)
        self.n_features = len(self.record.feature_names)
        self._trees = _forest_trees(self.estimator)
        self._fast = fast

    @property
    def up_column(self) -> int:
        return self._col

    @property
    def backend(self) -> str:
        return "onnx" if self._fast is not None else "sklearn"

    def rows(self, features: Features | Sequence[Mapping[str, float]]) -> FloatArray:
        names = self.record.feature_names
        if isinstance(features, Mapping):
            missing = [n for n in names if n not in features]
            if missing:
                raise MissingFeaturesError(
                    f"{self.record.label} needs features {', '.join(missing)}"
                )
            X = np.array([[float(features[n]) for n in names]])
        elif isinstance(features, np.ndarray):
            X = np.asarray(features, dtype=np.float64)
            if X.ndim == 1:
                X = X.reshape(1, -1)
            if X.ndim != 2 or X.shape[1] != self.n_features:
                raise MissingFeaturesError(
                    f"{self.record.label} needs {self.n_features} features "
                    f"({', '.join(names)}), got rows of shape {features.shape}"
                )
        else:
            X = np.vstack([self.rows(f) for f in features])
        if not np.isfinite(X).all():
            bad = sorted({names[j] for j in np.flatnonzero(~np.isfinite(X).all(axis=0))})
            raise MissingFeaturesError(
                f"{self.record.label}: features not available (NaN/inf): {', '.join(bad)}"
            )
        return X

    def prob_up(self, X: FloatArray) -> FloatArray:
        if self._fast is not None:
            try:
                return self._fast.prob_up(X)
            except Exception:
                # Parity was proven at conversion; a runtime failure means a broken runtime.
                log.exception("%s: ONNX Runtime failed; falling back to scikit-learn",
                              self.record.label)
                self._fast = None
        if self._trees:
            # RandomForestClassifier.predict_proba is the mean of its trees' class fractions;
            # calling the fitted trees directly skips a joblib dispatch per call (4.5 ms ->
            # 0.3 ms per row, measured) and gives the same numbers (parity-tested).
            X32 = np.ascontiguousarray(X, dtype=np.float32)
            acc = np.zeros(len(X))
            for tree in self._trees:
                acc += tree.predict(X32)[:, self._col]
            out: FloatArray = acc / len(self._trees)
            return out
        proba: FloatArray = self.estimator.predict_proba(X)[:, self._col]
        return proba

    def predict(self, features: Features) -> Prediction:
        t0 = time.perf_counter()
        p = float(self.prob_up(self.rows(features))[0])
        return Prediction(self.record.model_id, self.record.version, p, abs(2 * p - 1),
                          time.perf_counter() - t0)


class InferenceEngine:
    """Loads models on first use (verified through the registry) and scores them off the loop."""

    def __init__(
        self, loader: Loader, executor: Executor | None = None, *, fast: FastSource | None = None
    ) -> None:
        self._loader = loader
        self._fast = fast
        self._owns_executor = executor is None
        self._executor = executor or ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="inference", initializer=limit_threads
        )
        self._cache: dict[tuple[str, int], Predictor] = {}
        self._lock = threading.Lock()

    def predictor(self, model_id: str, version: int) -> Predictor:
        key = (model_id, version)
        with self._lock:
            cached = self._cache.get(key)
        if cached is not None:
            return cached
        predictor = Predictor(self._loader(model_id, version))
        if self._fast is not None:
            predictor = self._with_fast_path(predictor)
        with self._lock:
            return self._cache.setdefault(key, predictor)

    def _with_fast_path(self, predictor: Predictor) -> Predictor:
        from models.artifacts import ArtifactError

        assert self._fast is not None
        r = predictor.record
        try:
            scorer = self._fast(r.model_id, r.version, predictor.up_column)
        except ArtifactError:
            raise  # a tampered ONNX file is an attack, not a missing fast path
        except Exception:
            log.exception("%s: no ONNX fast path; scikit-learn serves it", r.label)
            return predictor
        if scorer is None:
            return predictor
        return Predictor(LoadedModel(r, predictor.estimator), scorer)

    def evict(self, model_id: str, version: int | None = None) -> None:
        with self._lock:
            for key in [k for k in self._cache if k[0] == model_id and version in (None, k[1])]:
                del self._cache[key]

    def predict_sync(self, model_id: str, version: int, features: Features) -> Prediction:
        """Blocking: call from the engine's thread or another worker, never the event loop."""
        return self.predictor(model_id, version).predict(features)

    def predict_batch_sync(self, model_id: str, version: int, X: FloatArray) -> FloatArray:
        predictor = self.predictor(model_id, version)
        return predictor.prob_up(predictor.rows(X))

    async def run(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def predict(self, model_id: str, version: int, features: Features) -> Prediction:
        return await self.run(lambda: self.predict_sync(model_id, version, features))

    async def predict_batch(self, model_id: str, version: int, X: FloatArray) -> FloatArray:
        return await self.run(lambda: self.predict_batch_sync(model_id, version, X))

    def close(self) -> None:
        if self._owns_executor:
            self._executor.shutdown(wait=True)
