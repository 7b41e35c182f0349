from __future__ import annotations

import threading

import numpy as np
import pytest

from models.ensemble import Ensemble, Member, combine
from models.features import FEATURE_NAMES
from models.inference import InferenceEngine, MissingFeaturesError
from models.registry import LoadedModel, ModelRegistry
from models.training import TrainingResult
from services.domain import Timeframe


def _production(registry: ModelRegistry, result: TrainingResult, model_id: str) -> int:
    v = registry.register(result, model_id=model_id, symbol="NSE:SYNTH",
                          timeframe=Timeframe.M5, actor="t").version
    registry.promote(model_id, v, "production", actor="t", force=True)
    return v


async def test_predictions_run_off_the_loop_and_match_the_estimator(
    registry: ModelRegistry, trained: dict[str, TrainingResult]
) -> None:
    calls: list[tuple[str, int]] = []

    def loader(model_id: str, version: int) -> LoadedModel:
        calls.append((model_id, version))
        return registry.load(model_id, version)

    engine = InferenceEngine(loader)
    try:
        for model_type, result in trained.items():
            v = _production(registry, result, model_type.replace("_", "-"))
            row = result.reference[-1]
            pred = await engine.predict(model_type.replace("_", "-"), v, row)
            expected = result.estimator.predict_proba(row.reshape(1, -1))[0, 1]
            assert pred.prob_up == pytest.approx(expected, abs=1e-12)
            assert pred.confidence == pytest.approx(abs(2 * expected - 1))
            assert pred.direction == (1 if expected > 0.5 else -1)
            named = dict(zip(FEATURE_NAMES, row.tolist(), strict=True))
            assert (await engine.predict(model_type.replace("_", "-"), v, named)).prob_up == (
                pytest.approx(expected, abs=1e-12))
            batch = await engine.predict_batch(model_type.replace("_", "-"), v,
                                               result.reference[:50])
            assert batch.shape == (50,)
        assert len(calls) == 3  # each model loaded once, lazily
        names = await engine.run(lambda: threading.current_thread().name)
        assert names.startswith("inference") and names != threading.current_thread().name
    finally:
        engine.close()


def test_forest_fast_path_matches_predict_proba(
    registry: ModelRegistry, trained: dict[str, TrainingResult]
) -> None:
    result = trained["random_forest"]
    v = _production(registry, result, "rf")
    engine = InferenceEngine(registry.load)
    try:
        predictor = engine.predictor("rf", v)
        X = result.reference
        assert predictor._trees  # the fast path is in use
        expected = result.estimator.predict_proba(X)[:, 1]
        assert np.abs(predictor.prob_up(X) - expected).max() < 1e-12
    finally:
        engine.close()


async def test_loaded_forest_is_single_threaded(
    registry: ModelRegistry, trained: dict[str, TrainingResult]
) -> None:
    result = trained["random_forest"]
    result.estimator.set_params(n_jobs=-1)  # as if trained with every core
    v = _production(registry, result, "rf")
    result.estimator.set_params(n_jobs=1)
    engine = InferenceEngine(registry.load)
    try:
        assert engine.predictor("rf", v).estimator.n_jobs == 1
    finally:
        engine.close()


async def test_missing_or_bad_features_are_clear_errors(
    registry: ModelRegistry, trained: dict[str, TrainingResult]
) -> None:
    v = _production(registry, trained["logistic_regression"], "lr")
    engine = InferenceEngine(registry.load)
    try:
        row = dict(zip(FEATURE_NAMES, trained["logistic_regression"].reference[0], strict=True))
        del row["rsi_14"], row["macd"]
        with pytest.raises(MissingFeaturesError, match="rsi_14, macd"):
            await engine.predict("lr", v, row)
        with pytest.raises(MissingFeaturesError, match="needs 10 features"):
            await engine.predict("lr", v, np.zeros(7))
        bad = np.zeros(len(FEATURE_NAMES))
        bad[2] = np.nan
        with pytest.raises(MissingFeaturesError, match="ret_20"):
            await engine.predict("lr", v, bad)
    finally:
        engine.close()


def test_weighted_vote_and_agreement_based_confidence() -> None:
    agree = combine([Member("a", 1, 1.0, 0.7), Member("b", 1, 1.0, 0.7)])
    split = combine([Member("a", 1, 1.0, 0.95), Member("b", 1, 1.0, 0.25)])
    assert agree.prob_up == pytest.approx(0.7) and agree.agreement == 1.0
    assert agree.confidence == pytest.approx(0.4)
    assert split.prob_up == pytest.approx(0.6) and split.agreement == 0.5
    assert split.confidence == pytest.approx(0.1)  # members disagree: low confidence
    heavy = combine([Member("a", 1, 3.0, 0.8), Member("b", 1, 1.0, 0.2)])
    assert heavy.prob_up == pytest.approx(0.65) and heavy.direction == 1
    with pytest.raises(ValueError):
        combine([])


async def test_ensemble_of_production_models(
    registry: ModelRegistry, trained: dict[str, TrainingResult]
) -> None:
    for model_type, result in trained.items():
        _production(registry, result, model_type.replace("_", "-"))
    engine = InferenceEngine(registry.load)
    try:
        row = trained["random_forest"].reference[-1]
        signal = await Ensemble(registry, engine).predict("NSE:SYNTH", row)
        assert len(signal.members) == 3
        probs = [m.prob_up for m in signal.members]
        assert min(probs) <= signal.prob_up <= max(probs)
        assert 0.0 <= signal.confidence <= signal.agreement <= 1.0
        with pytest.raises(LookupError):
            await Ensemble(registry, engine).predict("NSE:NONE", row)
    finally:
        engine.close()
