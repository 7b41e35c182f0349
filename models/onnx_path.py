"""ONNX Runtime fast path: a signed ONNX copy of each production version, used when it agrees.

Measured on the 2-core target (research/ml_headless.md 1.2): ONNX Runtime with one intra-op
thread scores one row in tens of microseconds, against 0.5-1.4 ms for scikit-learn. So when a
version reaches production it is converted with skl2onnx (float32 input, ``zipmap=False`` so
the output is a plain probability matrix), and the conversion is kept only if ONNX and
scikit-learn agree within ``PARITY_TOLERANCE`` on every row of a check batch: the last training
rows kept in the artifact plus synthetic rows over and beyond the training range. Training rows
matter: tree thresholds sit on training values, so they are where float32 rounding sends a row
down the other branch. Measured: HistGradientBoosting disagrees by up to 0.018 on about 1 % of
its training rows in float32 (ORT refuses its float64 form), so it is refused and keeps the
scikit-learn path; random forest and logistic regression agree within 1e-7. A refused model is
served by scikit-learn, as every model is when onnxruntime is not installed (an optional
extra). The ONNX file is signed like the joblib artifacts and verified before a session is
built from it.

skl2onnx 1.20.0 needs protobuf < 7: with protobuf 7 it fails on HistGradientBoosting
("Expected an int, got a boolean"); the parity check turns such a failure into a refusal.
"""

from __future__ import annotations

import importlib.util
import logging
import platform
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from models.artifacts import ArtifactRef, ArtifactStore
from models.features import FloatArray
from models.registry import LoadedModel, ModelRecord

log = logging.getLogger(__name__)

PARITY_TOLERANCE = 1e-5
CHECK_ROWS = 512
_MODULES = ("onnxruntime", "skl2onnx", "onnx")


def available() -> bool:
    """True when the optional ``onnx`` extra is installed (without importing it: ~0.3 s)."""
    return all(importlib.util.find_spec(m) is not None for m in _MODULES)


class OnnxRefused(Exception):
    """The conversion failed or disagreed with scikit-learn: serve the scikit-learn path."""


@dataclass(frozen=True, slots=True)
class OnnxArtifact:
    model_id: str
    version: int
    artifact: ArtifactRef
    max_abs_diff: float  # worst |p_onnx - p_sklearn| over the check batch
    rows_checked: int
    versions: dict[str, str]  # library versions that produced it
    created_at: datetime


class OnnxStore(Protocol):
    def get_onnx(self, model_id: str, version: int) -> OnnxArtifact | None: ...

    def put_onnx(self, artifact: OnnxArtifact) -> None: ...


class OnnxScorer:
    """One ONNX Runtime session on one thread: float64 rows in, P(up) out."""

    def __init__(self, model: bytes, up_column: int) -> None:
        import onnxruntime as ort  # type: ignore[import-not-found,import-untyped,unused-ignore]

        options = ort.SessionOptions()
        # On 2 cores the default thread pool spins and gave p99 ~4 ms (research 1.2).
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self._session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        names = [o.name for o in self._session.get_outputs()]
        if "probabilities" not in names:
            raise OnnxRefused(f"ONNX graph has no 'probabilities' output (outputs: {names})")
        self._outputs = ["probabilities"]
        self._col = up_column

    def prob_up(self, X: FloatArray) -> FloatArray:
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        proba = self._session.run(self._outputs, {self._input: X32})[0]
        return np.asarray(proba[:, self._col], dtype=np.float64)


def up_column(estimator: Any) -> int:
    classes = list(getattr(estimator, "classes_", []))
    if 1.0 not in classes:
        raise OnnxRefused("the model was never trained on an 'up' example")
    return classes.index(1.0)


def convert(estimator: Any, n_features: int) -> bytes:
    """skl2onnx conversion with float32 input and no ZipMap; OnnxRefused if it fails."""
    try:
        from skl2onnx import to_onnx  # type: ignore[import-not-found,import-untyped,unused-ignore]

        onx = to_onnx(estimator, np.zeros((1, n_features), dtype=np.float32),
                      options={"zipmap": False})
        data: bytes = onx.SerializeToString()
    except Exception as exc:
        raise OnnxRefused(f"skl2onnx could not convert the model: {exc}") from exc
    return data


def check_rows(record: ModelRecord, n: int = CHECK_ROWS, seed: int = 0) -> FloatArray:
    """Synthetic rows spread over (and past) the model's training deciles.

    Half follow each feature's training distribution (interpolated between its deciles), half
    are uniform over a range a little wider than the training one, so rarely seen corners and
    tree thresholds are exercised too. Built from the registry record alone: no data needed.
    """
    rng = np.random.default_rng(seed)
    cols = []
    for name in record.feature_names:
        edges = np.asarray(record.reference.get(name, {}).get("edges", [0.0]), dtype=np.float64)
        lo, hi = float(edges[0]), float(edges[-1])
        spread = (hi - lo) / 4 or max(abs(lo), 1.0) * 0.1
        if len(edges) > 1:
            grid = np.concatenate([[lo - spread], edges, [hi + spread]])
            quant = np.interp(rng.uniform(0, len(grid) - 1, n // 2), np.arange(len(grid)), grid)
        else:
            quant = rng.uniform(lo - spread, hi + spread, n // 2)
        wide = rng.uniform(lo - spread, hi + spread, n - n // 2)
        cols.append(np.concatenate([quant, wide]))
    return np.column_stack(cols)


def parity(estimator: Any, scorer: OnnxScorer, X: FloatArray) -> float:
    expected = np.asarray(estimator.predict_proba(X)[:, up_column(estimator)], dtype=np.float64)
    got = scorer.prob_up(X)
    return float(np.max(np.abs(got - expected)))


def _versions() -> dict[str, str]:
    import onnx  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import onnxruntime  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import skl2onnx  # type: ignore[import-not-found,import-untyped,unused-ignore]
    import sklearn  # type: ignore[import-untyped,unused-ignore]
    from google import protobuf  # type: ignore[import-not-found,import-untyped,unused-ignore]

    return {
        "python": platform.python_version(), "numpy": np.__version__,
        "sklearn": sklearn.__version__, "skl2onnx": skl2onnx.__version__,
        "onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__,
        "protobuf": protobuf.__version__,
    }


def _utc_now() -> datetime:
    return datetime.now(UTC)


class OnnxPath:
    """Builds, stores, verifies and opens the ONNX serving artifact of production versions."""

    def __init__(
        self,
        store: OnnxStore,
        artifacts: ArtifactStore,
        loader: Callable[[str, int], LoadedModel],
        *,
        tolerance: float = PARITY_TOLERANCE,
        now: Callable[[], datetime] = _utc_now,
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self._loader = loader
        self.tolerance = tolerance
        self._now = now
        self.refusals: dict[tuple[str, int], str] = {}  # why a version serves on scikit-learn

    def on_production(self, record: ModelRecord) -> OnnxArtifact | None:
        """Registry production hook: convert once; a refusal is logged, never raised."""
        if not available() or self.store.get_onnx(record.model_id, record.version) is not None:
            return None
        try:
            return self.build(record)
        except OnnxRefused as exc:
            log.warning("%s: ONNX refused, scikit-learn serves it: %s", record.label, exc)
            return None

    def build(self, record: ModelRecord, X: FloatArray | None = None) -> OnnxArtifact:
        """Convert, check parity on ``X`` (default ``check_rows``), sign and store; or refuse."""
        key = (record.model_id, record.version)
        try:
            loaded = self._loader(record.model_id, record.version)
            estimator = loaded.estimator
            data = convert(estimator, len(record.feature_names))
            scorer = OnnxScorer(data, up_column(estimator))
            rows = self._check_batch(record, loaded) if X is None else np.asarray(X, np.float64)
            diff = parity(estimator, scorer, rows)
            if not diff <= self.tolerance:
                raise OnnxRefused(
                    f"ONNX and scikit-learn differ by {diff:.2e} (> {self.tolerance:.0e}) on "
                    f"{len(rows)} check rows"
                )
        except OnnxRefused as exc:
            self.refusals[key] = str(exc)
            raise
        except Exception as exc:  # onnxruntime's own errors: refuse, keep the sklearn path
            self.refusals[key] = str(exc)
            raise OnnxRefused(f"ONNX Runtime could not run the converted model: {exc}") from exc
        ref = self.artifacts.save_bytes(data, f"{record.model_id}-v{record.version}.onnx")
        artifact = OnnxArtifact(record.model_id, record.version, ref, diff, len(rows),
                                _versions(), self._now())
        self.store.put_onnx(artifact)
        self.refusals.pop(key, None)
        return artifact

    @staticmethod
    def _check_batch(record: ModelRecord, loaded: LoadedModel) -> FloatArray:
        rows = [check_rows(record)]
        if loaded.check_rows is not None:
            kept = np.asarray(loaded.check_rows, dtype=np.float64)
            rows.append(kept[np.isfinite(kept).all(axis=1)])
        return np.vstack(rows)

    def scorer(self, model_id: str, version: int, up_col: int) -> OnnxScorer | None:
        """A verified session for this version, or None (not converted, or no onnxruntime).

        A stored artifact that fails its signature or hash raises ``ArtifactError``: that is
        tampering, not a missing fast path, and must be seen.
        """
        if not available():
            return None
        artifact = self.store.get_onnx(model_id, version)
        if artifact is None:
            return None
        return OnnxScorer(self.artifacts.verified_bytes(artifact.artifact), up_col)
