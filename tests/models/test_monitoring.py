from __future__ import annotations

import numpy as np
import pytest

from models.drift import drift_reference, psi
from models.features import BarArrays, compute_features
from models.inference import InferenceEngine
from models.labels import direction_labels
from models.monitoring import ModelHealth, ModelMonitor, MonitorRules
from models.registry import ModelRegistry, Stage
from models.synthetic import synthetic_bars
from models.training import TrainingResult
from services.domain import Timeframe
from tests.models.conftest import AuditSpy


def test_psi_is_small_for_the_same_distribution_and_large_for_a_shift() -> None:
    rng = np.random.default_rng(0)
    ref = drift_reference(rng.normal(size=(5000, 1)), ["x"])["x"]
    assert psi(ref, rng.normal(size=2000)) < 0.02
    assert psi(ref, rng.normal(0.8, 1.0, size=2000)) > 0.25
    assert np.isfinite(psi(ref, np.full(100, 99.0)))  # empty bins do not make it infinite


@pytest.fixture
def two_versions(
    registry: ModelRegistry, trained: dict[str, TrainingResult], contrarian: TrainingResult
) -> ModelRegistry:
    """v1 (momentum-trained) was production; v2, the planted degraded model, replaced it."""
    for result in (trained["logistic_regression"], contrarian):
        v = registry.register(result, model_id="mom", symbol="NSE:SYNTH",
                              timeframe=Timeframe.M5, actor="t").version
        registry.promote("mom", v, "production", actor="t", force=True)
    return registry


def _serve_live(monitor: ModelMonitor, registry: ModelRegistry, version: int,
                n: int = 400, shift: float = 0.0) -> None:
    """Score fresh momentum bars with ``version`` and resolve each prediction."""
    bars = BarArrays.from_bars(synthetic_bars(n + 60, seed=11, phi=0.3))
    X = compute_features(bars) + shift
    y = direction_labels(bars.close, 1)
    prev_up = np.concatenate([[np.nan], (np.diff(bars.close) > 0).astype(float)])
    engine = InferenceEngine(registry.load)
    try:
        for t in range(60, n + 59):
            pred = engine.predict_sync("mom", version, X[t])
            monitor.observe("mom", version, t, pred.prob_up, X[t], pred.latency_s,
                            bool(prev_up[t]))
            monitor.resolve(t, bool(y[t]))
    finally:
        engine.close()


def test_planted_degraded_model_is_rolled_back(
    two_versions: ModelRegistry, audit: AuditSpy
) -> None:
    registry = two_versions
    alerts: list[ModelHealth] = []
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=300), alert=alerts.append,
                           audit=audit)
    _serve_live(monitor, registry, version=2)
    health = monitor.check("mom")
    assert health.accuracy < health.baseline_accuracy
    assert health.tripped and "accuracy" in health.tripped[0]
    assert health.rolled_back_to == 1
    assert registry.production("mom").version == 1  # type: ignore[union-attr]
    assert registry.get("mom", 2).stage is Stage.ARCHIVED
    assert alerts == [health]
    assert "model.rollback" in audit.kinds() and audit.kinds()[-1] == "model.monitor_trip"
    assert health.latency_p99_s < 0.05


def test_healthy_model_is_left_alone(
    two_versions: ModelRegistry, audit: AuditSpy
) -> None:
    registry = two_versions
    registry.rollback("mom", actor="t")  # v1 back in production
    alerts: list[ModelHealth] = []
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=300, accuracy_margin=0.03),
                           alert=alerts.append, audit=audit)
    _serve_live(monitor, registry, version=1, n=1100)
    health = monitor.check("mom")
    assert health.resolved == 300 and not health.tripped, health
    assert health.psi and health.max_psi < 0.25
    assert alerts == [] and registry.production("mom").version == 1  # type: ignore[union-attr]


def test_feature_drift_trips_a_rollback(two_versions: ModelRegistry) -> None:
    registry = two_versions
    alerts: list[ModelHealth] = []
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=10_000),
                           alert=alerts.append)
    _serve_live(monitor, registry, version=2, n=1100, shift=5.0)
    health = monitor.check("mom")
    assert any("PSI" in t for t in health.tripped)
    assert health.rolled_back_to == 1 and len(alerts) == 1


def test_a_trip_with_nothing_to_roll_back_to_alerts_once_not_every_bar(
    registry: ModelRegistry, contrarian: TrainingResult, audit: AuditSpy
) -> None:
    version = registry.register(contrarian, model_id="mom", symbol="NSE:SYNTH",
                                timeframe=Timeframe.M5, actor="t").version
    registry.promote("mom", version, "production", actor="t", force=True)
    alerts: list[ModelHealth] = []
    monitor = ModelMonitor(registry, rules=MonitorRules(min_resolved=300), alert=alerts.append,
                           audit=audit)
    _serve_live(monitor, registry, version=version)
    for _ in range(5):  # as the live loop does after every scored bar
        health = monitor.check("mom")
        assert health.tripped and health.rolled_back_to is None
    assert len(alerts) == 1
    assert audit.kinds().count("model.monitor_trip") == 1
    assert registry.production("mom").version == version  # type: ignore[union-attr]
