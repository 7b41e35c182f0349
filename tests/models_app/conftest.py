"""A real encrypted profile database, an in-memory keyring and a small training setup."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.models_runtime import ModelsConfig, ModelsRuntime, build_models_runtime
from app.settings import Settings
from app.wiring import AppServices
from services.storage import Database

SYMBOL = "NSE:INFY"
# Small enough to train in about a second, large enough for two walk-forward folds.
SMALL = ModelsConfig(train_bars=900, train_size=300, test_size=100, max_splits=2)


@pytest.fixture
def database(tmp_path: Path, memory_keyring) -> Iterator[Database]:
    db = Database.open(tmp_path / "profile" / "terminal.db", os.urandom(32), create=True)
    try:
        yield db
    finally:
        db.close()


def quiet_settings(**extra: object) -> Settings:
    """Services whose own runtime stays off: the tests build theirs with ``SMALL``."""
    return Settings(seed=3, ticks_per_second=50, models_enabled=False, **extra)  # type: ignore[arg-type]


def runtime_for(
    services: AppServices, database: Database, config: ModelsConfig = SMALL
) -> ModelsRuntime:
    return build_models_runtime(
        database, services.bus, services.clock, profile="test",
        symbol_known=lambda key: services.instruments.get(key) is not None,
        history=services.simulator.history, order_submit=services.orders.submit, config=config,
    )
