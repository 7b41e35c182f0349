"""Migration 3 creates exactly the tables the model registry and the API key store expect."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from models.sqlstore import SCHEMA as MODEL_SCHEMA
from services.apikeys.store import SCHEMA as KEYS_SCHEMA
from services.storage import CURRENT_VERSION, Database


def _tables(rows: list[tuple[str, str]]) -> dict[str, str]:
    return {name: " ".join(sql.replace("IF NOT EXISTS ", "").split()) for name, sql in rows}


def test_v3_schema_matches_the_stores_own_ddl(tmp_path: Path) -> None:
    db = Database.open(tmp_path / "t.db", os.urandom(32), create=True)
    try:
        assert db.schema_version == CURRENT_VERSION >= 3
        ours = _tables(db.query("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL"))
    finally:
        db.close()
    plain = sqlite3.connect(":memory:")
    for statement in (*MODEL_SCHEMA, KEYS_SCHEMA):
        plain.execute(statement)
    theirs = _tables(
        plain.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL").fetchall()
    )
    assert theirs, "the stores declare no tables"
    for name, sql in theirs.items():
        if name.startswith("sqlite_"):
            continue
        assert ours.get(name) == sql, name
    assert "model_records" not in ours  # the v2 placeholder is gone
