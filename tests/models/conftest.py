from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from models.artifacts import ArtifactStore
from models.features import BarArrays
from models.registry import ModelRegistry
from models.sqlstore import SqlABStore, SqlRegistryStore, for_connection
from models.synthetic import synthetic_bars
from models.training import TrainingConfig, TrainingResult, train

KEY = b"k" * 32


@dataclass
class AuditSpy:
    rows: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __call__(self, kind: str, actor: str, details: dict[str, Any]) -> None:
        self.rows.append((kind, actor, details))

    def kinds(self) -> list[str]:
        return [r[0] for r in self.rows]


def quick_config(model_type: str, **kw: Any) -> TrainingConfig:
    params: dict[str, Any] = {}
    if model_type == "random_forest":
        params = {"n_estimators": 20, "max_depth": 6}
    elif model_type == "gradient_boosting":
        params = {"max_iter": 20}
    return TrainingConfig(model_type, train_size=600, test_size=200, max_splits=3,
                          params=params, **kw)


@pytest.fixture(scope="session")
def momentum_bars() -> BarArrays:
    return BarArrays.from_bars(synthetic_bars(2000, seed=1, phi=0.3))


@pytest.fixture(scope="session")
def trained(momentum_bars: BarArrays) -> dict[str, TrainingResult]:
    """One small fitted model per type, on momentum data."""
    return {t: train(momentum_bars, quick_config(t))
            for t in ("random_forest", "gradient_boosting", "logistic_regression")}


@pytest.fixture(scope="session")
def contrarian() -> TrainingResult:
    """A logistic model trained on mean-reverting data: wrong-footed on momentum data."""
    bars = BarArrays.from_bars(synthetic_bars(2000, seed=2, phi=-0.4))
    return train(bars, quick_config("logistic_regression"))


@pytest.fixture
def conn() -> Iterator[sqlite3.Connection]:
    c = sqlite3.connect(":memory:", check_same_thread=False)
    yield c
    c.close()


@pytest.fixture
def audit() -> AuditSpy:
    return AuditSpy()


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "models", lambda: KEY)


@pytest.fixture
def registry(
    conn: sqlite3.Connection, artifacts: ArtifactStore, audit: AuditSpy
) -> ModelRegistry:
    return ModelRegistry(SqlRegistryStore(for_connection(conn)), artifacts, audit=audit,
                         symbol_known=lambda s: s.startswith("NSE:"))


@pytest.fixture
def ab_store(conn: sqlite3.Connection) -> SqlABStore:
    return SqlABStore(for_connection(conn))
