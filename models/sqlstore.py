"""All of the models package's SQL: the registry and A/B stores on any DB-API connection.

Written for SQLite's dialect and the ``?`` parameter style, which stdlib ``sqlite3`` (tests)
and ``sqlcipher3`` (the profile database) share. The stores take a *transaction factory*: a
callable returning a context manager that yields a connection and commits on success, which is
exactly ``services.storage.Database.transaction``; ``for_connection`` builds one for a bare
connection. ``MIGRATION_SQL`` is the DDL as one numbered-migration script for the profile
database; ``SCHEMA`` is the same DDL with ``IF NOT EXISTS``, which the stores run on a bare
connection unless told ``create=False``. Stage events are insert-only: no statement here
updates or deletes one, and triggers make the database refuse it too.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any, Protocol

from models.abtest import ABTest, Arm, ArmStats
from models.artifacts import ArtifactRef
from models.onnx_path import OnnxArtifact
from models.registry import ModelRecord, Stage, StageEvent
from services.domain import Timeframe


class Cursor(Protocol):
    def fetchall(self) -> list[Any]: ...

    @property
    def rowcount(self) -> int: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ..., /) -> Any: ...

    def commit(self) -> None: ...

    def rollback(self) -> None: ...


Transaction = Callable[[], AbstractContextManager[Any]]

# name -> column list. One source for both the numbered migration and the tests' schema.
_TABLES: tuple[tuple[str, str], ...] = (
    ("ml_models", """
        model_id TEXT NOT NULL, version INTEGER NOT NULL, model_type TEXT NOT NULL,
        symbol TEXT NOT NULL, timeframe TEXT NOT NULL, horizon INTEGER NOT NULL,
        data_start TEXT NOT NULL, data_end TEXT NOT NULL, feature_names TEXT NOT NULL,
        feature_hash TEXT NOT NULL, metrics TEXT NOT NULL, artifact_name TEXT NOT NULL,
        artifact_size INTEGER NOT NULL, artifact_sha256 TEXT NOT NULL,
        artifact_signature TEXT NOT NULL, stage TEXT NOT NULL, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL, stage_changed_at TEXT NOT NULL,
        stage_changed_by TEXT NOT NULL, reference TEXT NOT NULL,
        PRIMARY KEY (model_id, version)"""),
    ("ml_stage_events", """
        seq INTEGER PRIMARY KEY AUTOINCREMENT, model_id TEXT NOT NULL, version INTEGER NOT NULL,
        from_stage TEXT, to_stage TEXT NOT NULL, actor TEXT NOT NULL, at TEXT NOT NULL,
        reason TEXT NOT NULL, previous_production INTEGER"""),
    ("ml_ab_tests", """
        test_id TEXT PRIMARY KEY, model_id TEXT NOT NULL, champion INTEGER NOT NULL,
        challenger INTEGER NOT NULL, split REAL NOT NULL, shadow INTEGER NOT NULL,
        min_samples INTEGER NOT NULL, max_samples INTEGER NOT NULL, alpha REAL NOT NULL,
        tau REAL NOT NULL, salt TEXT NOT NULL, status TEXT NOT NULL, created_at TEXT NOT NULL,
        created_by TEXT NOT NULL, concluded_at TEXT, verdict TEXT NOT NULL"""),
    ("ml_ab_predictions", """
        test_id TEXT NOT NULL, arm TEXT NOT NULL, symbol TEXT NOT NULL, bar_start TEXT NOT NULL,
        prob_up REAL NOT NULL, traded INTEGER NOT NULL, outcome INTEGER,
        PRIMARY KEY (test_id, arm, symbol, bar_start)"""),
    # The signed ONNX serving artifact of a version, when its conversion passed parity.
    ("ml_onnx_artifacts", """
        model_id TEXT NOT NULL, version INTEGER NOT NULL, artifact_name TEXT NOT NULL,
        artifact_size INTEGER NOT NULL, artifact_sha256 TEXT NOT NULL,
        artifact_signature TEXT NOT NULL, max_abs_diff REAL NOT NULL, rows_checked INTEGER NOT NULL,
        versions TEXT NOT NULL, created_at TEXT NOT NULL,
        PRIMARY KEY (model_id, version)"""),
)

# Stage events are the registry's history: the database refuses to rewrite them.
_TRIGGERS: tuple[tuple[str, str], ...] = (
    ("ml_stage_events_no_update",
     "BEFORE UPDATE ON ml_stage_events BEGIN SELECT RAISE(ABORT, 'stage events are append-only'); "
     "END"),
    ("ml_stage_events_no_delete",
     "BEFORE DELETE ON ml_stage_events BEGIN SELECT RAISE(ABORT, 'stage events are append-only'); "
     "END"),
)


def _ddl(if_not_exists: bool) -> tuple[str, ...]:
    guard = " IF NOT EXISTS" if if_not_exists else ""
    tables = tuple(f"CREATE TABLE{guard} {name} ({cols}\n)" for name, cols in _TABLES)
    triggers = tuple(f"CREATE TRIGGER{guard} {name} {body}" for name, body in _TRIGGERS)
    return tables + triggers


# For ``services/storage/migrations.py``: append as the next numbered migration, unchanged.
MIGRATION_SQL: str = "".join(f"{statement};\n" for statement in _ddl(if_not_exists=False))

# For a bare connection (tests, scratch databases): creates whatever is missing.
SCHEMA: tuple[str, ...] = _ddl(if_not_exists=True)


def for_connection(conn: Connection) -> Transaction:
    """A transaction factory for a bare DB-API connection: commit on success, else roll back.

    A lock serialises transactions, because the inference thread reads the registry too (an
    sqlite3 connection shared that way must be opened with ``check_same_thread=False``).
    """
    lock = threading.RLock()

    @contextlib.contextmanager
    def transaction() -> Iterator[Connection]:
        with lock:
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()

    return transaction


def create_schema(transaction: Transaction) -> None:
    with transaction() as c:
        for statement in SCHEMA:
            c.execute(statement)


def _ts(value: datetime) -> str:
    if value.tzinfo is None:
        raise ValueError("timestamps must be timezone-aware")
    return value.isoformat()


def _dt(value: str) -> datetime:
    return datetime.fromisoformat(value)


_MODEL_COLUMNS = (
    "model_id, version, model_type, symbol, timeframe, horizon, data_start, data_end, "
    "feature_names, feature_hash, metrics, artifact_name, artifact_size, artifact_sha256, "
    "artifact_signature, stage, created_at, created_by, stage_changed_at, stage_changed_by, "
    "reference"
)


def _model_row(r: ModelRecord) -> tuple[Any, ...]:
    a = r.artifact
    return (
        r.model_id, r.version, r.model_type, r.symbol, r.timeframe.value, r.horizon,
        _ts(r.data_start), _ts(r.data_end), json.dumps(list(r.feature_names)), r.feature_hash,
        json.dumps(r.metrics, sort_keys=True), a.name, a.size, a.sha256, a.signature,
        r.stage.value, _ts(r.created_at), r.created_by, _ts(r.stage_changed_at),
        r.stage_changed_by, json.dumps(r.reference, sort_keys=True),
    )


def _model(row: Sequence[Any]) -> ModelRecord:
    return ModelRecord(
        model_id=row[0], version=int(row[1]), model_type=row[2], symbol=row[3],
        timeframe=Timeframe(row[4]), horizon=int(row[5]), data_start=_dt(row[6]),
        data_end=_dt(row[7]), feature_names=tuple(json.loads(row[8])), feature_hash=row[9],
        metrics=json.loads(row[10]),
        artifact=ArtifactRef(row[11], int(row[12]), row[13], row[14]),
        stage=Stage(row[15]), created_at=_dt(row[16]), created_by=row[17],
        stage_changed_at=_dt(row[18]), stage_changed_by=row[19], reference=json.loads(row[20]),
    )


def _event(row: Sequence[Any]) -> StageEvent:
    return StageEvent(
        seq=int(row[0]), model_id=row[1], version=int(row[2]),
        from_stage=Stage(row[3]) if row[3] is not None else None, to_stage=Stage(row[4]),
        actor=row[5], at=_dt(row[6]), reason=row[7],
        previous_production=int(row[8]) if row[8] is not None else None,
    )


class SqlRegistryStore:
    def __init__(self, transaction: Transaction, *, create: bool = True) -> None:
        self._tx = transaction
        if create:
            create_schema(transaction)

    def next_version(self, model_id: str) -> int:
        with self._tx() as c:
            row = c.execute(
                "SELECT MAX(version) FROM ml_models WHERE model_id = ?", (model_id,)
            ).fetchall()
        return int(row[0][0] or 0) + 1

    def get(self, model_id: str, version: int) -> ModelRecord | None:
        with self._tx() as c:
            rows = c.execute(
                f"SELECT {_MODEL_COLUMNS} FROM ml_models WHERE model_id = ? AND version = ?",  # noqa: S608
                (model_id, version),
            ).fetchall()
        return _model(rows[0]) if rows else None

    def records(self, model_id: str | None = None) -> list[ModelRecord]:
        sql = f"SELECT {_MODEL_COLUMNS} FROM ml_models"  # noqa: S608
        params: tuple[Any, ...] = ()
        if model_id is not None:
            sql += " WHERE model_id = ?"
            params = (model_id,)
        with self._tx() as c:
            rows = c.execute(sql + " ORDER BY model_id, version", params).fetchall()
        return [_model(r) for r in rows]

    def events(self, model_id: str | None = None) -> list[StageEvent]:
        sql = (
            "SELECT seq, model_id, version, from_stage, to_stage, actor, at, reason, "
            "previous_production FROM ml_stage_events"
        )
        params: tuple[Any, ...] = ()
        if model_id is not None:
            sql += " WHERE model_id = ?"
            params = (model_id,)
        with self._tx() as c:
            rows = c.execute(sql + " ORDER BY seq", params).fetchall()
        return [_event(r) for r in rows]

    def commit(self, records: Sequence[ModelRecord], events: Sequence[StageEvent]) -> None:
        placeholders = ", ".join("?" * 21)
        with self._tx() as c:
            for r in records:
                c.execute(
                    f"INSERT OR REPLACE INTO ml_models ({_MODEL_COLUMNS}) VALUES ({placeholders})",  # noqa: S608
                    _model_row(r),
                )
            for e in events:
                c.execute(
                    "INSERT INTO ml_stage_events (model_id, version, from_stage, to_stage, "
                    "actor, at, reason, previous_production) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (e.model_id, e.version, e.from_stage.value if e.from_stage else None,
                     e.to_stage.value, e.actor, _ts(e.at), e.reason, e.previous_production),
                )


_AB_COLUMNS = (
    "test_id, model_id, champion, challenger, split, shadow, min_samples, max_samples, alpha, "
    "tau, salt, status, created_at, created_by, concluded_at, verdict"
)


def _ab(row: Sequence[Any]) -> ABTest:
    return ABTest(
        test_id=row[0], model_id=row[1], champion=int(row[2]), challenger=int(row[3]),
        split=float(row[4]), shadow=bool(row[5]), min_samples=int(row[6]),
        max_samples=int(row[7]), alpha=float(row[8]), tau=float(row[9]), salt=row[10],
        status=row[11], created_at=_dt(row[12]), created_by=row[13],
        concluded_at=_dt(row[14]) if row[14] else None, verdict=row[15],
    )


class SqlABStore:
    def __init__(self, transaction: Transaction, *, create: bool = True) -> None:
        self._tx = transaction
        if create:
            create_schema(transaction)

    def save_test(self, test: ABTest) -> None:
        with self._tx() as c:
            c.execute(
                f"INSERT OR REPLACE INTO ml_ab_tests ({_AB_COLUMNS}) "  # noqa: S608
                f"VALUES ({', '.join('?' * 16)})",
                (test.test_id, test.model_id, test.champion, test.challenger, test.split,
                 int(test.shadow), test.min_samples, test.max_samples, test.alpha, test.tau,
                 test.salt, test.status, _ts(test.created_at), test.created_by,
                 _ts(test.concluded_at) if test.concluded_at else None, test.verdict),
            )

    def get_test(self, test_id: str) -> ABTest | None:
        with self._tx() as c:
            rows = c.execute(
                f"SELECT {_AB_COLUMNS} FROM ml_ab_tests WHERE test_id = ?",  # noqa: S608
                (test_id,),
            ).fetchall()
        return _ab(rows[0]) if rows else None

    def tests(self) -> list[ABTest]:
        with self._tx() as c:
            rows = c.execute(
                f"SELECT {_AB_COLUMNS} FROM ml_ab_tests ORDER BY created_at"  # noqa: S608
            ).fetchall()
        return [_ab(r) for r in rows]

    def record_prediction(
        self, test_id: str, arm: Arm, symbol: str, bar_start: datetime, prob_up: float,
        traded: bool,
    ) -> bool:
        with self._tx() as c:
            cur = c.execute(
                "INSERT OR IGNORE INTO ml_ab_predictions (test_id, arm, symbol, bar_start, "
                "prob_up, traded) VALUES (?, ?, ?, ?, ?, ?)",
                (test_id, arm.value, symbol, _ts(bar_start), prob_up, int(traded)),
            )
            return bool(cur.rowcount == 1)

    def resolve(self, test_id: str, symbol: str, bar_start: datetime, went_up: bool) -> int:
        with self._tx() as c:
            cur = c.execute(
                "UPDATE ml_ab_predictions SET outcome = ? WHERE test_id = ? AND symbol = ? "
                "AND bar_start = ? AND outcome IS NULL",
                (int(went_up), test_id, symbol, _ts(bar_start)),
            )
            return int(cur.rowcount)

    def arm_stats(self, test_id: str) -> dict[Arm, ArmStats]:
        with self._tx() as c:
            rows = c.execute(
                "SELECT arm, COUNT(*), SUM(CASE WHEN (prob_up > 0.5) = (outcome = 1) "
                "THEN 1 ELSE 0 END) FROM ml_ab_predictions WHERE test_id = ? AND outcome IS "
                "NOT NULL GROUP BY arm",
                (test_id,),
            ).fetchall()
        out = {arm: ArmStats(0, 0) for arm in Arm}
        for arm, n, hits in rows:
            out[Arm(arm)] = ArmStats(int(n), int(hits or 0))
        return out


class SqlOnnxStore:
    """Where each version's ONNX serving artifact is recorded (``models.onnx_path``)."""

    def __init__(self, transaction: Transaction, *, create: bool = True) -> None:
        self._tx = transaction
        if create:
            create_schema(transaction)

    def get_onnx(self, model_id: str, version: int) -> OnnxArtifact | None:
        with self._tx() as c:
            rows = c.execute(
                "SELECT model_id, version, artifact_name, artifact_size, artifact_sha256, "
                "artifact_signature, max_abs_diff, rows_checked, versions, created_at "
                "FROM ml_onnx_artifacts WHERE model_id = ? AND version = ?",
                (model_id, version),
            ).fetchall()
        if not rows:
            return None
        r = rows[0]
        return OnnxArtifact(
            r[0], int(r[1]), ArtifactRef(r[2], int(r[3]), r[4], r[5]), float(r[6]), int(r[7]),
            json.loads(r[8]), _dt(r[9]),
        )

    def put_onnx(self, artifact: OnnxArtifact) -> None:
        a = artifact.artifact
        with self._tx() as c:
            c.execute(
                "INSERT OR REPLACE INTO ml_onnx_artifacts (model_id, version, artifact_name, "
                "artifact_size, artifact_sha256, artifact_signature, max_abs_diff, "
                "rows_checked, versions, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (artifact.model_id, artifact.version, a.name, a.size, a.sha256, a.signature,
                 artifact.max_abs_diff, artifact.rows_checked,
                 json.dumps(artifact.versions, sort_keys=True), _ts(artifact.created_at)),
            )
