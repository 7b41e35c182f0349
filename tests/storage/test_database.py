from __future__ import annotations

import os
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.domain import (
    Bar,
    Depth,
    DepthLevel,
    Exchange,
    Instrument,
    InstrumentKind,
    OrderStatus,
    Position,
    Product,
    Tick,
    Timeframe,
)
from services.storage import (
    CURRENT_VERSION,
    AlertRecord,
    Database,
    DatabaseMissingError,
    OrderJournal,
    SchemaTooNewError,
    TickWriter,
    WrongKeyError,
)
from services.storage.sqlcipher import Connection, connect_raw
from tests.storage.helpers import T0, make_fill, make_order, make_tick

KEY = bytes(range(32))
MARKER = "PLAINTEXT_MARKER_7f3a9c"


def _all_bytes(db_path: Path) -> bytes:
    data = db_path.read_bytes()
    wal = db_path.with_name(db_path.name + "-wal")
    return data + (wal.read_bytes() if wal.exists() else b"")


def test_file_holds_no_plaintext_of_a_marker_row(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Database.open(path, KEY, create=True) as db:
        db.settings.set("note", MARKER)
        OrderJournal(db).record_intent(make_order("o1", tag=MARKER))
        assert MARKER.encode() not in _all_bytes(path)  # WAL included, before checkpoint
        db.checkpoint()
    raw = path.read_bytes()
    assert MARKER.encode() not in raw
    assert not raw.startswith(b"SQLite format 3")
    assert os.stat(path).st_mode & 0o077 == 0
    with Database.open(path, KEY) as db:
        assert db.settings.get("note") == MARKER


def test_wrong_key_fails_cleanly_and_leaves_the_file_alone(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Database.open(path, KEY, create=True) as db:
        db.settings.set("x", 1)
    before = path.read_bytes()
    with pytest.raises(WrongKeyError) as info:
        Database.open(path, bytes(32), create=True)  # create=True must not replace a file
    assert str(info.value) == "wrong passphrase or key"
    assert info.value.__cause__ is None and info.value.__suppress_context__
    assert path.read_bytes() == before
    with Database.open(path, KEY) as db:
        assert db.settings.get("x") == 1


def test_missing_file_is_not_created_silently(tmp_path: Path) -> None:
    with pytest.raises(DatabaseMissingError):
        Database.open(tmp_path / "nope.db", KEY)
    assert not (tmp_path / "nope.db").exists()


def test_migration_from_schema_1_keeps_data(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    with Database.open(path, KEY, create=True, target_version=1) as db:
        assert db.schema_version == 1
        with db.transaction() as c:  # a schema-1 row, written as version 1 wrote it
            c.execute(
                "INSERT INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (
                    "o1",
                    "NSE:RELIANCE",
                    "BUY",
                    10,
                    "LIMIT",
                    "MIS",
                    "DAY",
                    "2500.05",
                    None,
                    "t1",
                    "ticket",
                    "OPEN",
                    T0.isoformat(),
                    T0.isoformat(),
                    0,
                    "0",
                    "",
                ),
            )
        db.settings.set("theme", "dark")
    with Database.open(path, KEY) as db:
        assert db.schema_version == CURRENT_VERSION
        order = db.orders.get("o1")
        assert order is not None
        assert order.status is OrderStatus.OPEN
        assert order.request.price == Decimal("2500.05")
        assert order.broker_order_id is None
        assert db.settings.get("theme") == "dark"
        tables = {name for (name,) in db.query("SELECT name FROM sqlite_master")}
        assert {"ml_models", "ml_stage_events", "api_keys"} <= tables


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    Database.open(path, KEY, create=True).close()
    conn = connect_raw(path, KEY)
    conn.execute("PRAGMA user_version = 99")
    conn.close()
    with pytest.raises(SchemaTooNewError, match="newer"):
        Database.open(path, KEY)


def test_repositories_round_trip_domain_records(tmp_path: Path) -> None:
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        inst = Instrument(
            Exchange.NFO,
            "NIFTY26JAN24000CE",
            "123",
            "NIFTY",
            InstrumentKind.CALL,
            Decimal("0.05"),
            75,
            expiry=date(2026, 1, 29),
            strike=Decimal("24000"),
            underlying="NIFTY",
            freeze_quantity=1800,
        )
        db.instruments.upsert_many([inst])
        assert db.instruments.get(inst.key) == inst

        depth = Depth(
            (DepthLevel(Decimal("99.95"), 10, 2),), (DepthLevel(Decimal("100.05"), 5, 1),)
        )
        ticks = [make_tick("NSE:A", T0 + timedelta(seconds=i // 3), i) for i in range(30)]
        ticks.append(
            Tick(
                "NSE:A",
                T0 + timedelta(seconds=20),
                Decimal("1"),
                1,
                1,
                Decimal(1),
                Decimal(1),
                Decimal(1),
                Decimal(1),
                depth,
            )
        )
        writer = TickWriter(db, batch_size=7)
        for t in ticks:
            writer.add(t)
        writer.add(make_tick("NSE:B", T0, 0))
        writer.flush()
        latest = db.ticks.latest("NSE:A", limit=5)
        # Newest five, oldest first; ticks sharing a timestamp keep their arrival order.
        assert latest == [*ticks[26:30], ticks[30]]
        assert latest[-1].depth == depth
        assert db.ticks.count() == 32

        bar = Bar("NSE:A", Timeframe.M1, T0, Decimal("1.5"), Decimal(2), Decimal(1), Decimal(2), 9)
        db.bars.upsert_many([bar, bar])
        assert db.bars.between("NSE:A", Timeframe.M1, T0, T0 + timedelta(minutes=1)) == [bar]

        journal = OrderJournal(db)
        order = make_order("o1")
        journal.record_intent(order)
        opened = order.evolve(OrderStatus.OPEN, T0 + timedelta(seconds=1), broker_order_id="B1")
        journal.record_update(opened)
        journal.record_fill(make_fill("f1", "o1"))
        journal.record_fill(make_fill("f1", "o1"))  # a broker resend is not a second fill
        assert db.orders.get("o1") == opened
        assert db.fills.for_order("o1") == [make_fill("f1", "o1")]

        pos = Position("NSE:A", Product.MIS).apply_fill(order.side, 5, Decimal("10.10"))
        db.positions.upsert(pos)
        assert db.positions.all() == [pos]

        alert_id = db.alerts.add(AlertRecord("NSE:A", "above", Decimal("101.5"), T0, "n"))
        db.alerts.mark_triggered(alert_id, T0 + timedelta(hours=1))
        (alert,) = db.alerts.all()
        assert not alert.active and alert.triggered_at == T0 + timedelta(hours=1)
        assert db.alerts.all(active_only=True) == []


def test_naive_datetimes_are_refused(tmp_path: Path) -> None:
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        with pytest.raises(ValueError, match="naive"):
            db.ticks.insert_many([make_tick("NSE:A", datetime(2026, 1, 1), 1)])
        assert db.ticks.count() == 0


def test_audit_table_refuses_update_and_delete(tmp_path: Path) -> None:
    from services.security import AuditLog

    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        AuditLog(db).record("unlock", "test", {})
        with pytest.raises(Exception, match="append-only"), db.transaction() as c:
            c.execute("UPDATE audit_log SET actor = 'x'")
        with pytest.raises(Exception, match="append-only"), db.transaction() as c:
            c.execute("DELETE FROM audit_log")
        assert len(AuditLog(db).rows()) == 1


def test_the_journal_never_moves_an_order_backwards(tmp_path: Path) -> None:
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        journal = OrderJournal(db)
        placed = make_order("o1")
        opened = replace(placed, status=OrderStatus.OPEN)
        partly = replace(opened, status=OrderStatus.PARTIALLY_FILLED, filled_quantity=4)
        filled = replace(opened, status=OrderStatus.FILLED, filled_quantity=10)
        for order in (placed, partly, filled):
            journal.record_update(order)
        journal.record_update(opened)  # a late, older update (the REST reply after the socket)
        journal.record_update(partly)
        stored = db.orders.get("o1")
        assert stored is not None
        assert (stored.status, stored.filled_quantity) == (OrderStatus.FILLED, 10)


def test_a_days_orders_and_fills_are_read_by_ist_date(tmp_path: Path) -> None:
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        journal = OrderJournal(db)
        # IST midnight of 25 Nov is 18:30 UTC on 24 Nov.
        times = {
            "before": datetime(2026, 11, 24, 18, 29, 59, tzinfo=UTC),
            "first": datetime(2026, 11, 24, 18, 30, tzinfo=UTC),
            "late": datetime(2026, 11, 25, 18, 29, 59, 500000, tzinfo=UTC),
            "after": datetime(2026, 11, 25, 18, 30, tzinfo=UTC),
        }
        for name, at in times.items():
            journal.record_update(replace(make_order(name), placed_at=at, updated_at=at))
            journal.record_fill(replace(make_fill(f"f-{name}", name), ts=at))
        start = datetime(2026, 11, 24, 18, 30, tzinfo=UTC)
        end = start + timedelta(days=1)
        assert [o.order_id for o in db.orders.placed_between(start, end)] == ["first", "late"]
        assert [f.fill_id for f in db.fills.between(start, end)] == ["f-first", "f-late"]


def test_a_rider_is_written_in_the_next_journal_transaction_and_survives_its_failure(
    tmp_path: Path,
) -> None:
    """``ride_next_journal_commit``: the node's idempotency claim, written inside the order's
    intent. A transaction that fails keeps its riders for the next one, never drops them."""
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:

        def claim(conn: Connection) -> None:
            conn.execute("INSERT INTO settings (name, value) VALUES ('claim', '1')")

        db.ride_next_journal_commit(claim)
        assert db.query("SELECT value FROM settings WHERE name = 'claim'") == []
        with pytest.raises(RuntimeError), db.journal_transaction():
            raise RuntimeError("the intent's write failed")
        assert db.query("SELECT value FROM settings WHERE name = 'claim'") == []
        order = make_order("ord-1")
        with db.journal_transaction(durable=False) as c:  # the claim without an fsync...
            db.orders.upsert(c, order)
        assert db.query("SELECT value FROM settings WHERE name = 'claim'") == [("1",)]
        assert [o.order_id for o in db.orders.all()] == [order.order_id]
        # ...and the connection is back to synchronous=FULL for the intent after it.
        with db.journal_transaction() as c:
            assert c.execute("PRAGMA synchronous").fetchone() == (2,)


def test_the_wal_is_checkpointed_aside_before_a_journal_commit_would_do_it(
    tmp_path: Path,
) -> None:
    """Journal commits in bursts, as orders come: the checkpoint aside keeps the WAL well
    under SQLite's 1,000-page threshold (4 MB), so no order's commit runs a checkpoint."""
    import time

    from services.storage.database import CHECKPOINT_EVERY

    path = tmp_path / "p.db"
    with Database.open(path, os.urandom(32), create=True) as db:
        largest = 0
        for burst in range(12):
            for i in range(CHECKPOINT_EVERY):
                with db.journal_transaction(durable=False) as conn:  # no fsync: a fast test
                    conn.execute("INSERT OR REPLACE INTO settings (name, value) VALUES (?, ?)",
                                 (f"k{i % 50}", f'"{burst}-{i}"'))  # fmt: skip
                largest = max(largest, Path(f"{path}-wal").stat().st_size)
            time.sleep(0.05)  # between bursts the checkpoint aside finishes
        # Left to the automatic checkpoint alone the WAL reaches the 4 MB threshold.
        assert largest < 2 * 2**20, f"the WAL grew to {largest} bytes"
