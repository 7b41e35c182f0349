"""Repositories: the only place the terminal's tables are read or written.

Each takes the ``Database`` that owns the connections and speaks services.domain records.
Every value goes through a bound parameter; the SQL text is constant.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from services.domain import Bar, Fill, Instrument, Order, Position, Product, Tick, Timeframe
from services.storage import codec
from services.storage.sqlcipher import Connection

if TYPE_CHECKING:
    from services.storage.database import Database


class _Repository:
    def __init__(self, db: Database) -> None:
        self._db = db


class InstrumentRepository(_Repository):
    def upsert_many(self, instruments: Iterable[Instrument]) -> None:
        rows = [codec.instrument_row(i) for i in instruments]
        with self._db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO instruments VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

    def replace_all(self, instruments: Iterable[Instrument]) -> None:
        """Make the table exactly ``instruments``, in one transaction (a broker's whole day's
        master: nothing of another broker's, or of an earlier day's, survives)."""
        rows = [codec.instrument_row(i) for i in instruments]
        with self._db.transaction() as c:
            c.execute("DELETE FROM instruments")
            c.executemany("INSERT OR REPLACE INTO instruments VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)

    def get(self, key: str) -> Instrument | None:
        exchange, _, symbol = key.partition(":")
        rows = self._db.query(
            "SELECT * FROM instruments WHERE exchange = ? AND tradingsymbol = ?",
            (exchange, symbol),
        )
        return codec.instrument_from(rows[0]) if rows else None

    def all(self) -> list[Instrument]:
        rows = self._db.query("SELECT * FROM instruments ORDER BY exchange, tradingsymbol")
        return [codec.instrument_from(r) for r in rows]


_INSERT_TICK = "INSERT INTO tick_rows VALUES (?,?,?)"
_TICK_SELECT = (
    f"SELECT {codec.TICK_COLUMNS} FROM tick_rows "  # noqa: S608
    "WHERE instrument = (SELECT id FROM tick_keys WHERE key = ?) "
)


class TickRepository(_Repository):
    """Recorded ticks: ``tick_rows`` rows, appended in arrival order, and their instruments.

    Instrument ids are cached per database (both connections and every writer share one
    ``Database``); a key is given its id in a transaction of its own before the first row
    that uses it, so a tick batch that fails leaves at most an unused key behind.
    """

    def __init__(self, db: Database) -> None:
        super().__init__(db)
        self._ids: dict[str, int] | None = None

    def key_ids(self, keys: Iterable[str]) -> dict[str, int]:
        """The id of every key (a new key gets one): the mapping ``codec.tick_rows`` takes.

        Returns the shared cache itself; it only ever grows.
        """
        ids = self._ids
        if ids is None:
            ids = self._ids = {
                k: i for i, k in self._db.query("SELECT id, key FROM tick_keys")
            }
        missing = set(keys).difference(ids)
        if missing:
            found: dict[str, int] = {}
            with self._db.transaction() as c:
                for key in sorted(missing):
                    c.execute("INSERT OR IGNORE INTO tick_keys (key) VALUES (?)", (key,))
                    row = c.execute("SELECT id FROM tick_keys WHERE key = ?", (key,)).fetchone()
                    assert row is not None  # inserted just now, or before
                    found[key] = row[0]
            ids.update(found)  # only once committed
        return ids

    def insert_rows(self, conn: Connection, rows: Sequence[tuple[Any, ...]]) -> None:
        """Insert already-encoded rows inside the caller's transaction (the TickWriter's)."""
        conn.executemany(_INSERT_TICK, rows)

    def insert_many(self, ticks: Iterable[Tick]) -> None:
        ticks = list(ticks)
        rows = codec.tick_rows(ticks, self.key_ids(t.key for t in ticks))
        with self._db.transaction() as c:
            self.insert_rows(c, rows)

    def latest(self, key: str, limit: int = 500) -> list[Tick]:
        """The newest ``limit`` ticks of one instrument, oldest first (ready to plot)."""
        rows = self._db.query(
            _TICK_SELECT + "ORDER BY ts_ns DESC, rowid DESC LIMIT ?", (key, limit)
        )
        rows.reverse()
        return codec.ticks_from(key, rows)

    def between(self, key: str, start: datetime, end: datetime) -> list[Tick]:
        """One instrument's ticks in ``[start, end)``, in time and then arrival order."""
        rows = self._db.query(
            _TICK_SELECT + "AND ts_ns >= ? AND ts_ns < ? ORDER BY ts_ns, rowid",
            (key, codec.to_ns(start), codec.to_ns(end)),
        )
        return codec.ticks_from(key, rows)

    def count(self) -> int:
        return int(self._db.query("SELECT count(*) FROM tick_rows")[0][0])


class BarRepository(_Repository):
    def upsert_many(self, bars: Iterable[Bar]) -> None:
        rows = [codec.bar_row(b) for b in bars]
        with self._db.transaction() as c:
            c.executemany("INSERT OR REPLACE INTO bars VALUES (?,?,?,?,?,?,?,?,?)", rows)

    def between(self, key: str, timeframe: Timeframe, start: datetime, end: datetime) -> list[Bar]:
        rows = self._db.query(
            "SELECT * FROM bars WHERE key = ? AND timeframe = ? AND start_ns >= ? "
            "AND start_ns < ? ORDER BY start_ns",
            (key, timeframe.value, codec.to_ns(start), codec.to_ns(end)),
        )
        return [codec.bar_from(r) for r in rows]


_ORDER_COLUMNS = (
    "order_id, key, side, quantity, order_type, product, validity, price, trigger_price, tag, "
    "source, status, placed_at, updated_at, filled_quantity, average_price, status_message, "
    "broker_order_id"
)
_UPSERT_ORDER = (
    f"INSERT INTO orders ({_ORDER_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?) "  # noqa: S608
    "ON CONFLICT(order_id) DO UPDATE SET key=excluded.key, side=excluded.side, "
    "quantity=excluded.quantity, order_type=excluded.order_type, product=excluded.product, "
    "validity=excluded.validity, price=excluded.price, trigger_price=excluded.trigger_price, "
    "tag=excluded.tag, source=excluded.source, status=excluded.status, "
    "updated_at=excluded.updated_at, filled_quantity=excluded.filled_quantity, "
    "average_price=excluded.average_price, status_message=excluded.status_message, "
    "broker_order_id=excluded.broker_order_id "
    # Updates can arrive out of order (a broker's socket before its REST reply): a final state
    # is never overwritten and the filled quantity never goes back.
    "WHERE orders.status NOT IN ('FILLED', 'CANCELLED', 'REJECTED') "
    "AND excluded.filled_quantity >= orders.filled_quantity"
)


class OrderRepository(_Repository):
    def upsert(self, conn: Connection, order: Order) -> None:
        conn.execute(_UPSERT_ORDER, codec.order_row(order))

    def get(self, order_id: str) -> Order | None:
        rows = self._db.query(
            f"SELECT {_ORDER_COLUMNS} FROM orders WHERE order_id = ?",  # noqa: S608
            (order_id,),
        )
        return codec.order_from(rows[0]) if rows else None

    def all(self) -> list[Order]:
        rows = self._db.query(
            f"SELECT {_ORDER_COLUMNS} FROM orders ORDER BY placed_at, order_id"  # noqa: S608
        )
        return [codec.order_from(r) for r in rows]

    def ids(self) -> set[str]:
        return {r[0] for r in self._db.query("SELECT order_id FROM orders")}

    def placed_between(self, start: datetime, end: datetime) -> list[Order]:
        """Orders placed in ``[start, end)``: a restart reads one day, not the whole history."""
        rows = self._db.query(
            f"SELECT {_ORDER_COLUMNS} FROM orders "  # noqa: S608
            "WHERE placed_at >= ? AND placed_at < ? ORDER BY placed_at, order_id",
            (codec.to_iso(start), codec.to_iso(end)),
        )
        return [codec.order_from(r) for r in rows]

    def delete(self, conn: Connection, order_id: str) -> None:
        conn.execute("DELETE FROM orders WHERE order_id = ?", (order_id,))


class FillRepository(_Repository):
    def insert(self, conn: Connection, fill: Fill) -> None:
        """Idempotent: brokers resend fills after a reconnect."""
        conn.execute("INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?)", codec.fill_row(fill))

    def for_order(self, order_id: str) -> list[Fill]:
        rows = self._db.query("SELECT * FROM fills WHERE order_id = ? ORDER BY ts", (order_id,))
        return [codec.fill_from(r) for r in rows]

    def all(self) -> list[Fill]:
        return [codec.fill_from(r) for r in self._db.query("SELECT * FROM fills ORDER BY ts")]

    def ids(self) -> set[str]:
        return {r[0] for r in self._db.query("SELECT fill_id FROM fills")}

    def between(self, start: datetime, end: datetime) -> list[Fill]:
        rows = self._db.query(
            "SELECT * FROM fills WHERE ts >= ? AND ts < ? ORDER BY ts",
            (codec.to_iso(start), codec.to_iso(end)),
        )
        return [codec.fill_from(r) for r in rows]


class PositionRepository(_Repository):
    def upsert(self, position: Position) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO positions VALUES (?,?,?,?,?,?,?,?,?)",
                codec.position_row(position),
            )

    def get(self, key: str, product: Product) -> Position | None:
        rows = self._db.query(
            "SELECT * FROM positions WHERE key = ? AND product = ?", (key, product.value)
        )
        return codec.position_from(rows[0]) if rows else None

    def all(self) -> list[Position]:
        rows = self._db.query("SELECT * FROM positions ORDER BY key, product")
        return [codec.position_from(r) for r in rows]


@dataclass(frozen=True, slots=True)
class AlertRecord:
    """A price alert as stored; the alert engine decides what ``condition`` means."""

    key: str
    condition: str  # e.g. "last_price_above"
    threshold: Decimal
    created_at: datetime
    note: str = ""
    active: bool = True
    triggered_at: datetime | None = None
    alert_id: int | None = None
    triggered_price: Decimal | None = None  # None for alerts fired before schema v7


class AlertRepository(_Repository):
    def add(self, alert: AlertRecord) -> int:
        with self._db.transaction() as c:
            cur = c.execute(
                "INSERT INTO alerts (key, condition, threshold, created_at, triggered_at, "
                "active, note) VALUES (?,?,?,?,?,?,?)",
                (
                    alert.key,
                    alert.condition,
                    str(alert.threshold),
                    codec.to_iso(alert.created_at),
                    codec.to_iso(alert.triggered_at) if alert.triggered_at else None,
                    int(alert.active),
                    alert.note,
                ),
            )
            return int(cur.lastrowid or 0)

    def mark_triggered(self, alert_id: int, at: datetime, price: Decimal | None = None) -> None:
        with self._db.transaction() as c:
            c.execute(
                "UPDATE alerts SET triggered_at = ?, triggered_price = ?, active = 0 "
                "WHERE alert_id = ?",
                (codec.to_iso(at), None if price is None else str(price), alert_id),
            )

    def delete(self, alert_id: int) -> None:
        with self._db.transaction() as c:
            c.execute("DELETE FROM alerts WHERE alert_id = ?", (alert_id,))

    def all(self, *, active_only: bool = False) -> list[AlertRecord]:
        rows = self._db.query(
            "SELECT alert_id, key, condition, threshold, created_at, triggered_at, active, note, "
            "triggered_price FROM alerts WHERE active >= ? ORDER BY alert_id",
            (1 if active_only else 0,),
        )
        return [
            AlertRecord(
                alert_id=r[0],
                key=r[1],
                condition=r[2],
                threshold=Decimal(r[3]),
                created_at=codec.from_iso(r[4]),
                triggered_at=codec.from_iso(r[5]) if r[5] else None,
                active=bool(r[6]),
                note=r[7],
                triggered_price=Decimal(r[8]) if r[8] is not None else None,
            )
            for r in rows
        ]


class GttRepository(_Repository):
    """The terminal's GTT book, each GTT as its JSON record (``services.gtt`` owns the form)."""

    def put(self, gtt_id: int, record: str) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO gtts (gtt_id, record) VALUES (?, ?)", (gtt_id, record)
            )

    def all(self) -> list[tuple[int, str]]:
        rows = self._db.query("SELECT gtt_id, record FROM gtts ORDER BY gtt_id")
        return [(int(r[0]), str(r[1])) for r in rows]


class SettingsRepository(_Repository):
    """Per-profile settings as JSON values (never secrets: those live in the keyring)."""

    def get(self, name: str, default: Any = None) -> Any:
        rows = self._db.query("SELECT value FROM settings WHERE name = ?", (name,))
        return json.loads(rows[0][0]) if rows else default

    def set(self, name: str, value: Any) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                (name, json.dumps(value, sort_keys=True)),
            )

    def all(self) -> dict[str, Any]:
        return {n: json.loads(v) for n, v in self._db.query("SELECT name, value FROM settings")}


@dataclass(frozen=True, slots=True)
class CredentialMeta:
    broker: str
    field_names: tuple[str, ...]
    set_at: datetime


class CredentialMetaRepository(_Repository):
    """Which broker credentials exist and when they were set; the values are in the keyring."""

    def set(self, broker: str, field_names: Iterable[str], set_at: datetime) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO credential_meta VALUES (?,?,?)",
                (broker, json.dumps(sorted(field_names)), codec.to_iso(set_at)),
            )

    def delete(self, broker: str) -> bool:
        with self._db.transaction() as c:
            return c.execute("DELETE FROM credential_meta WHERE broker = ?", (broker,)).rowcount > 0

    def all(self) -> list[CredentialMeta]:
        rows = self._db.query("SELECT * FROM credential_meta ORDER BY broker")
        return [CredentialMeta(r[0], tuple(json.loads(r[1])), codec.from_iso(r[2])) for r in rows]


class VaultSecretRepository(_Repository):
    """Secrets kept inside the encrypted database when no trusted OS keyring exists.

    The table is not in ``EXPORT_TABLES``: an export never carries a secret.
    """

    def get(self, name: str) -> str | None:
        rows = self._db.query("SELECT value FROM vault_secrets WHERE name = ?", (name,))
        return str(rows[0][0]) if rows else None

    def set(self, name: str, value: str, set_at: datetime) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT OR REPLACE INTO vault_secrets (name, value, set_at) VALUES (?,?,?)",
                (name, value, codec.to_iso(set_at)),
            )

    def delete(self, name: str) -> bool:
        with self._db.transaction() as c:
            return c.execute("DELETE FROM vault_secrets WHERE name = ?", (name,)).rowcount > 0

    def names(self) -> list[str]:
        return [str(r[0]) for r in self._db.query("SELECT name FROM vault_secrets ORDER BY name")]


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    ts: str
    kind: str
    actor: str
    details: str  # canonical JSON as written
    prev_hash: str
    hash: str


class AuditRepository(_Repository):
    """Raw storage of the audit chain; services.security.audit computes and checks hashes."""

    def last(self, conn: Connection) -> AuditRow | None:
        row = conn.execute(
            "SELECT seq, ts, kind, actor, details, prev_hash, hash FROM audit_log "
            "ORDER BY seq DESC LIMIT 1"
        ).fetchone()
        return AuditRow(*row) if row else None

    def append(self, conn: Connection, row: AuditRow) -> None:
        conn.execute(
            "INSERT INTO audit_log (seq, ts, kind, actor, details, prev_hash, hash) "
            "VALUES (?,?,?,?,?,?,?)",
            (row.seq, row.ts, row.kind, row.actor, row.details, row.prev_hash, row.hash),
        )

    def rows(self) -> list[AuditRow]:
        return [
            AuditRow(*r)
            for r in self._db.query(
                "SELECT seq, ts, kind, actor, details, prev_hash, hash FROM audit_log ORDER BY seq"
            )
        ]


class OrderCountRepository(_Repository):
    """Orders sent per broker per IST day: the ``DailyCountStore`` of the order throttle.

    ``save`` keeps the larger count, so writes that reach the database out of order (they
    are handed to an executor) never lower it.
    """

    def load(self, broker: str, day: date) -> int:
        rows = self._db.query(
            "SELECT sent FROM order_counts WHERE broker = ? AND day = ?", (broker, day.isoformat())
        )
        return int(rows[0][0]) if rows else 0

    def save(self, broker: str, day: date, sent: int) -> None:
        with self._db.transaction() as c:
            c.execute(
                "INSERT INTO order_counts (broker, day, sent) VALUES (?, ?, ?) "
                "ON CONFLICT (broker, day) DO UPDATE SET sent = MAX(sent, excluded.sent)",
                (broker, day.isoformat(), sent),
            )
