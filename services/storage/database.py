"""One profile's encrypted database: connections, transactions and its repositories.

Two connections share the file in WAL mode. The main one runs ``synchronous=NORMAL``: a
committed tick batch survives a process crash (it is in the WAL) and only an OS crash or power
cut can lose the last few batches, which is the right price for tens of thousands of rows a
second. The journal connection runs ``synchronous=FULL``: an order or fill it commits is
fsynced before ``commit`` returns, so it is on disk before the order goes to the broker.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from services.storage.errors import DatabaseMissingError
from services.storage.migrations import CURRENT_VERSION, migrate, schema_version
from services.storage.repositories import (
    AlertRepository,
    AuditRepository,
    BarRepository,
    CredentialMetaRepository,
    FillRepository,
    GttRepository,
    InstrumentRepository,
    OrderRepository,
    PositionRepository,
    SettingsRepository,
    TickRepository,
    VaultSecretRepository,
)
from services.storage.sqlcipher import Connection, connect_raw, rekey

# Every table a trader's export contains; also the whitelist for the one place a table name
# is put into SQL text (identifiers cannot be bound parameters).
EXPORT_TABLES: tuple[str, ...] = (
    "instruments",
    "ticks",
    "bars",
    "history_bars",
    "history_days",
    "orders",
    "fills",
    "positions",
    "alerts",
    "gtts",
    "backtests",
    "settings",
    "ml_models",
    "ml_stage_events",
    "ml_ab_tests",
    "ml_ab_predictions",
    "ml_onnx_artifacts",
    "credential_meta",
    "audit_log",
)

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000


def _configure(conn: Connection, synchronous: str) -> None:
    conn.execute("PRAGMA journal_mode = WAL").fetchone()
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA temp_store = MEMORY")


# The journal connection's commits should not be the ones that checkpoint the WAL: SQLite's
# automatic checkpoint runs inside the commit that crosses its 1,000-page threshold, and on
# the journal connection that commit is, a few times in a few hundred, an order's intent,
# which then waits some 20 ms more for the database file's copy and fsync (the p99 of
# bench_node_order_path). So after every CHECKPOINT_EVERY journal commits (a few hundred
# pages) the main connection checkpoints on a thread of its own, the next journal write
# starts the WAL afresh, and the threshold is not reached; the automatic checkpoint stays as
# the safety net for a burst that outruns the one aside.
CHECKPOINT_EVERY = 64


class Database:
    """An unlocked profile database. Blocking: call it from a worker thread, not the loop."""

    def __init__(self, path: Path, conn: Connection, journal_conn: Connection) -> None:
        self.path = path
        self._conn = conn
        self._journal_conn = journal_conn
        self._lock = threading.RLock()
        self._journal_lock = threading.Lock()
        # Writes waiting for the next transaction on the journal connection.
        self._riders: list[Callable[[Connection], None]] = []
        self._riders_lock = threading.Lock()
        self._journal_commits = 0  # since the last checkpoint (CHECKPOINT_EVERY)
        self._checkpointing = False
        self._closed = False
        self.instruments = InstrumentRepository(self)
        self.ticks = TickRepository(self)
        self.bars = BarRepository(self)
        self.orders = OrderRepository(self)
        self.fills = FillRepository(self)
        self.positions = PositionRepository(self)
        self.alerts = AlertRepository(self)
        self.gtts = GttRepository(self)
        self.settings = SettingsRepository(self)
        self.credential_meta = CredentialMetaRepository(self)
        self.audit = AuditRepository(self)
        self.vault_secrets = VaultSecretRepository(self)

    @classmethod
    def open(
        cls, path: Path, key: bytes, *, create: bool = False, target_version: int | None = None
    ) -> Database:
        """Open (and migrate) the database at ``path``.

        ``create`` must be true to make a new file: an unlock that finds no file when one is
        expected is an error, never a fresh empty database.
        """
        if not path.exists():
            if not create:
                raise DatabaseMissingError(f"no database at {path}")
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            # Create the file ourselves with owner-only permissions; SQLite's WAL and SHM
            # files copy the database file's mode.
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
            os.close(fd)
        conn = connect_raw(path, key)
        try:
            _configure(conn, "NORMAL")
            migrate(conn, CURRENT_VERSION if target_version is None else target_version)
            journal = connect_raw(path, key)
            _configure(journal, "FULL")
        except BaseException:
            conn.close()
            raise
        return cls(path, conn, journal)

    @property
    def schema_version(self) -> int:
        with self._lock:
            return schema_version(self._conn)

    @contextlib.contextmanager
    def transaction(self) -> Iterator[Connection]:
        """One write transaction on the main (synchronous=NORMAL) connection."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextlib.contextmanager
    def journal_transaction(self, *, durable: bool = True) -> Iterator[Connection]:
        """One write transaction on the synchronous=FULL connection: durable at return.

        ``durable=False`` commits without the fsync: the transaction is in the WAL (a killed
        process keeps it) and becomes durable with the next durable commit, since that fsync
        covers the whole WAL file, every frame before its own included (or with a checkpoint,
        which syncs the WAL first). Only for a write that a durable commit is sure to follow
        before anything depends on it surviving a power cut: the order node's idempotency
        claim, which the order's intent makes durable before the broker sees the order.
        """
        with self._journal_lock:
            conn = self._journal_conn
            with self._riders_lock:
                riders, self._riders = self._riders, []
            if not durable:
                conn.execute("PRAGMA synchronous = NORMAL")
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for ride in riders:
                        ride(conn)
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    self._unride(riders)
                    raise
                try:
                    conn.execute("COMMIT")
                except BaseException:
                    with contextlib.suppress(Exception):
                        conn.execute("ROLLBACK")
                    self._unride(riders)
                    raise
            finally:
                if not durable:
                    conn.execute("PRAGMA synchronous = FULL")
            self._journal_commits += 1
            if self._journal_commits >= CHECKPOINT_EVERY and not self._checkpointing:
                self._journal_commits = 0
                self._checkpointing = True
                threading.Thread(target=self._checkpoint_aside, name="dalal-checkpoint",
                                 daemon=True).start()  # fmt: skip

    def _checkpoint_aside(self) -> None:
        """A PASSIVE checkpoint: it copies what no reader needs and never blocks a writer."""
        try:
            with self._lock:
                if not self._closed:
                    self._conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except Exception:  # the next one retries; the main connection checkpoints too
            log.exception("WAL checkpoint failed")
        finally:
            self._checkpointing = False

    def ride_next_journal_commit(self, write: Callable[[Connection], None]) -> None:
        """Run ``write`` at the start of the next transaction on the journal connection.

        For a write that must be on disk no later than a journal write queued after it, with
        no thread hop or commit of its own: the order node's idempotency claim, which rides
        in the order's intent (the intent's transaction, or one before it, takes it). A
        transaction that fails puts its riders back for the next one, so a rider that cannot
        be written stops the journal writes after it: an idempotency claim that is not on
        disk must not let its order out. Callable from any thread, the event loop included.
        """
        with self._riders_lock:
            self._riders.append(write)

    def _unride(self, riders: list[Callable[[Connection], None]]) -> None:
        if riders:
            with self._riders_lock:
                self._riders[:0] = riders

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._conn.execute(sql, params).fetchall()

    def dump_table(self, table: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Return the column names and all rows of an exportable table."""
        if table not in EXPORT_TABLES:
            raise ValueError(f"not an exportable table: {table}")
        with self._lock:
            cur = self._conn.execute(f"SELECT * FROM {table}")  # noqa: S608 - whitelisted name
            columns = [d[0] for d in cur.description or ()]
            return columns, cur.fetchall()

    def rekey(self, new_key: bytes) -> None:
        """Re-encrypt the file under ``new_key``; the old key stops working at return."""
        with self._lock, self._journal_lock:
            self._journal_conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            rekey(self._conn, new_key)
            # The journal connection still holds the old key's cipher state: reopen it.
            self._journal_conn.close()
            self._journal_conn = connect_raw(self.path, new_key)
            _configure(self._journal_conn, "FULL")

    def checkpoint(self) -> None:
        with self._lock:
            self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        if self._closed:
            return
        with self._lock, self._journal_lock:
            self._journal_conn.close()
            self._conn.close()
            self._closed = True

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
