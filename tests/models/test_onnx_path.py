"""The ONNX fast path: built at promotion, parity-checked, signed, preferred, refused on doubt."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np
import pytest

from models import onnx_path
from models.artifacts import ArtifactError, ArtifactStore
from models.inference import InferenceEngine
from models.onnx_path import OnnxPath
from models.registry import ModelRegistry
from models.sqlstore import SqlOnnxStore, for_connection
from models.training import TrainingResult
from services.domain import Timeframe

needs_ort = pytest.mark.skipif(
    not onnx_path.available(),
    reason="onnxruntime/skl2onnx/onnx not installed (optional 'onnx' extra): the scikit-learn "
           "path serves and the ONNX fast path cannot be tested here",
)


@pytest.fixture
def onnx(conn: sqlite3.Connection, artifacts: ArtifactStore, registry: ModelRegistry) -> OnnxPath:
    path = OnnxPath(SqlOnnxStore(for_connection(conn)), artifacts, registry.load)
    registry.production_hooks.append(path.on_production)
    return path


def _register(registry: ModelRegistry, result: TrainingResult, model_id: str) -> int:
    return registry.register(result, model_id=model_id, symbol="NSE:SYNTH",
                             timeframe=Timeframe.M5, actor="t").version


@needs_ort
def test_promotion_builds_a_signed_onnx_artifact_that_matches_sklearn(
    registry: ModelRegistry, onnx: OnnxPath, trained: dict[str, TrainingResult]
) -> None:
    engine = InferenceEngine(registry.load, fast=onnx.scorer)
    try:
        for model_type in ("random_forest", "logistic_regression"):
            result = trained[model_type]
            model_id = model_type.replace("_", "-")
            v = _register(registry, result, model_id)
            registry.promote(model_id, v, "staging", actor="t")
            assert onnx.store.get_onnx(model_id, v) is None  # only production is converted
            registry.promote(model_id, v, "production", actor="t")
            art = onnx.store.get_onnx(model_id, v)
            assert art is not None, onnx.refusals
            assert art.artifact.name.endswith(".onnx") and art.max_abs_diff <= 1e-5
            assert art.versions["protobuf"].split(".")[0] != "7"
            predictor = engine.predictor(model_id, v)
            assert predictor.backend == "onnx"
            X = result.reference[-300:]
            expected = result.estimator.predict_proba(X)[:, 1]
            assert np.abs(predictor.prob_up(predictor.rows(X)) - expected).max() < 1e-5
            assert predictor.predict(X[-1]).prob_up == pytest.approx(expected[-1], abs=1e-5)
    finally:
        engine.close()


@needs_ort
def test_gradient_boosting_fails_float32_parity_and_keeps_the_sklearn_path(
    registry: ModelRegistry, onnx: OnnxPath, trained: dict[str, TrainingResult]
) -> None:
    """Its thresholds sit on training values: float32 rounding flips a few of those rows."""
    v = _register(registry, trained["gradient_boosting"], "gb")
    registry.promote("gb", v, "production", actor="t", force=True)  # the hook never raises
    assert onnx.store.get_onnx("gb", v) is None
    assert "differ by" in onnx.refusals[("gb", v)]
    engine = InferenceEngine(registry.load, fast=onnx.scorer)
    try:
        predictor = engine.predictor("gb", v)
        assert predictor.backend == "sklearn"
        X = trained["gradient_boosting"].reference
        expected = trained["gradient_boosting"].estimator.predict_proba(X)[:, 1]
        assert np.abs(predictor.prob_up(X) - expected).max() < 1e-12
    finally:
        engine.close()


@needs_ort
def test_a_conversion_that_fails_parity_is_refused_and_sklearn_serves(
    registry: ModelRegistry, conn: sqlite3.Connection, artifacts: ArtifactStore,
    trained: dict[str, TrainingResult],
) -> None:
    strict = OnnxPath(SqlOnnxStore(for_connection(conn)), artifacts, registry.load,
                      tolerance=1e-15)  # float32 ONNX cannot agree this closely
    registry.production_hooks.append(strict.on_production)
    v = _register(registry, trained["logistic_regression"], "lr")
    registry.promote("lr", v, "production", actor="t", force=True)  # the hook never raises
    assert strict.store.get_onnx("lr", v) is None
    assert "differ by" in strict.refusals[("lr", v)]
    assert not list(artifacts.directory.glob("*.onnx"))  # nothing refused is kept on disk
    engine = InferenceEngine(registry.load, fast=strict.scorer)
    try:
        assert engine.predictor("lr", v).backend == "sklearn"
    finally:
        engine.close()


@needs_ort
def test_tampered_onnx_artifact_is_refused(
    registry: ModelRegistry, onnx: OnnxPath, trained: dict[str, TrainingResult]
) -> None:
    v = _register(registry, trained["random_forest"], "rf")
    registry.promote("rf", v, "production", actor="t", force=True)
    art = onnx.store.get_onnx("rf", v)
    assert art is not None
    path = onnx.artifacts.directory / art.artifact.name
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    engine = InferenceEngine(registry.load, fast=onnx.scorer)
    try:
        with pytest.raises(ArtifactError, match="SHA-256 mismatch"):
            engine.predictor("rf", v)
    finally:
        engine.close()


@needs_ort
def test_rollback_target_gets_its_onnx_artifact(
    registry: ModelRegistry, conn: sqlite3.Connection, artifacts: ArtifactStore,
    trained: dict[str, TrainingResult], contrarian: TrainingResult,
) -> None:
    v1 = _register(registry, trained["logistic_regression"], "mom")
    registry.promote("mom", v1, "production", actor="t", force=True)  # before ONNX was set up
    path = OnnxPath(SqlOnnxStore(for_connection(conn)), artifacts, registry.load)
    registry.production_hooks.append(path.on_production)
    v2 = _register(registry, contrarian, "mom")
    registry.promote("mom", v2, "production", actor="t", force=True)
    assert path.store.get_onnx("mom", v1) is None and path.store.get_onnx("mom", v2)
    registry.rollback("mom", actor="t")
    assert path.store.get_onnx("mom", v1) is not None


@pytest.mark.skipif(onnx_path.available(), reason="checks the behaviour without onnxruntime")
def test_without_onnxruntime_promotion_works_and_sklearn_serves(
    registry: ModelRegistry, onnx: OnnxPath, trained: dict[str, TrainingResult],
    tmp_path: Path,
) -> None:
    v = _register(registry, trained["logistic_regression"], "lr")
    assert registry.promote("lr", v, "production", actor="t", force=True).version == v
    assert onnx.store.get_onnx("lr", v) is None
    engine = InferenceEngine(registry.load, fast=onnx.scorer)
    try:
        assert engine.predictor("lr", v).backend == "sklearn"
    finally:
        engine.close()
