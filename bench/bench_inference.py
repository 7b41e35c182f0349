"""Inference latency on the scikit-learn path: one row per model type, and a 500-row batch.

Targets (issue 7): single-prediction p99 < 2 ms for every model type; a batch of 500
instruments < 10 ms; with the optional ONNX Runtime fast path installed, single-prediction
p99 < 0.1 ms for every model whose conversion passed parity (a refused model keeps the
scikit-learn path and is reported, not timed). Models are trained on synthetic bars with the
terminal's default parameters, registered (signed artifact, SQLite registry in a temporary
directory), loaded through the inference engine and scored the way it scores them: one
thread, float64 rows.
Exits 1 if any target is missed. Run: .venv/bin/python bench/bench_inference.py
"""

from __future__ import annotations

import sys
import time

import numpy as np

SINGLE_P99_TARGET_MS = 2.0
BATCH_TARGET_MS = 10.0
BATCH = 500
ONNX_P99_TARGET_MS = 0.1


def main() -> int:
    import secrets
    import sqlite3
    import tempfile
    from pathlib import Path

    from models import onnx_path
    from models.artifacts import ArtifactStore
    from models.features import BarArrays
    from models.inference import InferenceEngine, limit_threads
    from models.registry import ModelRegistry
    from models.sqlstore import SqlOnnxStore, SqlRegistryStore, for_connection
    from models.synthetic import synthetic_bars
    from models.training import MODEL_TYPES, TrainingConfig, train
    from services.domain import Timeframe

    limit_threads()
    bars = BarArrays.from_bars(synthetic_bars(3000, seed=0))
    tmp = tempfile.TemporaryDirectory()
    key = secrets.token_bytes(32)
    tx = for_connection(sqlite3.connect(":memory:", check_same_thread=False))
    artifacts = ArtifactStore(Path(tmp.name), lambda: key)
    registry = ModelRegistry(SqlRegistryStore(tx), artifacts)
    engine = InferenceEngine(registry.load)
    ok = True
    records = {}
    print(f"{'model':<22}{'p50 ms':>9}{'p99 ms':>9}{'target':>9}{'batch500 ms':>13}{'target':>9}")
    for model_type in MODEL_TYPES:
        result = train(bars, TrainingConfig(model_type, train_size=1500, test_size=500,
                                             max_splits=1))
        record = registry.register(result, model_id=model_type.replace("_", "-"),
                                   symbol="NSE:SYNTH", timeframe=Timeframe.M5, actor="bench")
        records[model_type] = (record, result.reference)
        predictor = engine.predictor(record.model_id, record.version)
        rows = result.reference
        for i in range(100):  # warm-up
            predictor.predict(rows[i])
        times = []
        for i in range(2000):
            row = rows[i % len(rows)]
            t0 = time.perf_counter_ns()
            predictor.predict(row)  # row check + predict_proba, as the engine does
            times.append(time.perf_counter_ns() - t0)
        p50, p99 = np.percentile(times, [50, 99]) / 1e6
        batch = np.resize(rows, (BATCH, rows.shape[1]))
        btimes = []
        for _ in range(30):
            t0 = time.perf_counter_ns()
            predictor.prob_up(predictor.rows(batch))
            btimes.append(time.perf_counter_ns() - t0)
        bmed = float(np.median(btimes)) / 1e6
        miss = p99 >= SINGLE_P99_TARGET_MS or bmed >= BATCH_TARGET_MS
        ok &= not miss
        print(f"{model_type:<22}{p50:>9.3f}{p99:>9.3f}{'<2':>9}{bmed:>13.3f}{'<10':>9}"
              f"{'  MISS' if miss else ''}")
    engine.close()
    if onnx_path.available():
        ok &= _bench_onnx(onnx_path.OnnxPath(SqlOnnxStore(tx), artifacts, registry.load),
                          InferenceEngine, registry, records)
    else:
        print("ONNX fast path: onnxruntime/skl2onnx/onnx not installed (optional extra); skipped")
    tmp.cleanup()
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


def _timed_p(predictor: object, rows: np.ndarray, n: int = 2000) -> tuple[float, float]:
    predict = predictor.predict  # type: ignore[attr-defined]
    for i in range(100):
        predict(rows[i])
    times = []
    for i in range(n):
        row = rows[i % len(rows)]
        t0 = time.perf_counter_ns()
        predict(row)
        times.append(time.perf_counter_ns() - t0)
    p50, p99 = np.percentile(times, [50, 99]) / 1e6
    return float(p50), float(p99)


def _bench_onnx(onnx: object, engine_cls: type, registry: object, records: dict) -> bool:
    """ONNX single-row latency, through the engine's predictor as live inference uses it."""
    from models.onnx_path import OnnxRefused

    ok = True
    print(f"\n{'ONNX fast path':<22}{'p50 ms':>9}{'p99 ms':>9}{'target':>9}{'max |dp|':>11}")
    engine = engine_cls(registry.load, fast=onnx.scorer)  # type: ignore[attr-defined]
    for model_type, (record, rows) in records.items():
        try:
            art = onnx.build(record)  # type: ignore[attr-defined]
        except OnnxRefused as exc:
            print(f"{model_type:<22}refused, scikit-learn serves it: {str(exc)[:60]}")
            continue
        predictor = engine.predictor(record.model_id, record.version)
        assert predictor.backend == "onnx"
        p50, p99 = _timed_p(predictor, rows)
        miss = p99 >= ONNX_P99_TARGET_MS
        ok &= not miss
        print(f"{model_type:<22}{p50:>9.4f}{p99:>9.4f}{'<0.1':>9}{art.max_abs_diff:>11.1e}"
              f"{'  MISS' if miss else ''}")
    engine.close()
    return ok


if __name__ == "__main__":
    sys.exit(main())
