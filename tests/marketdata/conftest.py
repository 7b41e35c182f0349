"""Fixtures for the market-data tests: a real (encrypted) profile database per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from services.marketdata.store import HistoryStore
from services.storage import Database

KEY = bytes(range(32))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "terminal.db", KEY, create=True) as database:
        yield database


@pytest.fixture
def store(db: Database) -> HistoryStore:
    return HistoryStore(db)
