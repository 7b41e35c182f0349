"""Recorded ticks in the compact log (migrations 10 and 12): what was recorded before still
reads back.

The v1 ``ticks`` table is rewritten into ``tick_log`` by migration 10, whose twelve columns
migration 12 folds into one JSON text per tick (``tick_rows``); the readers (chart history,
backtest replay through ``TickRepository``) and the export must see the same ticks, in the
same order, as before.
"""

from __future__ import annotations

import csv
import io
import json
import os
import zipfile
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from services.domain import Depth, DepthLevel, Tick
from services.storage import Database, TickWriter, codec
from services.storage.export import export_zip
from services.storage.migrations import MIGRATIONS
from tests.storage.helpers import T0, make_tick

KEY = os.urandom(32)
BEFORE_TICK_LOG = MIGRATIONS.index(next(m for m in MIGRATIONS if "CREATE TABLE tick_log" in m))
BEFORE_TICK_ROWS = MIGRATIONS.index(next(m for m in MIGRATIONS if "CREATE TABLE tick_rows" in m))

DEPTH = Depth(
    (DepthLevel(Decimal("99.95"), 10, 2), DepthLevel(Decimal("99.90"), 4, 1)),
    (DepthLevel(Decimal("100.05"), 5, 1),),
)


def _v1_row(tick: Tick, seq: int, depth: str | None) -> tuple[object, ...]:
    return (
        tick.key, codec.to_ns(tick.ts), seq, str(tick.last_price), tick.last_quantity, tick.volume,
        str(tick.open), str(tick.high), str(tick.low), str(tick.close), depth,
    )  # fmt: skip


def test_ticks_recorded_in_the_v1_table_survive_the_migration(tmp_path: Path) -> None:
    path = tmp_path / "t.db"
    # Same instant for several ticks: only their seq said which came first.
    a = [make_tick("NSE:A", T0 + timedelta(seconds=i // 3), i) for i in range(9)]
    b = [make_tick("NSE:B", T0, 40 + i) for i in range(3)]
    depth_text = '{"b":[["99.95",10,2],["99.90",4,1]],"a":[["100.05",5,1]]}'
    with Database.open(path, KEY, create=True, target_version=BEFORE_TICK_LOG) as old:
        assert old.schema_version == BEFORE_TICK_LOG
        rows = [_v1_row(t, 1000 - i, None) for i, t in enumerate(a)]  # seq need not rise
        rows += [_v1_row(t, i, depth_text if i == 2 else None) for i, t in enumerate(b)]
        with old.transaction() as c:
            c.executemany("INSERT INTO ticks VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
    with Database.open(path, KEY) as db:
        assert db.ticks.count() == 12
        # In (time, seq) order, as the v1 readers returned them.
        expect_a = sorted(a, key=lambda t: (t.ts, 1000 - a.index(t)))
        assert db.ticks.latest("NSE:A", limit=50) == expect_a
        assert db.ticks.latest("NSE:A", limit=2) == expect_a[-2:]
        assert db.ticks.between("NSE:A", T0, T0 + timedelta(seconds=1)) == expect_a[:3]
        got_b = db.ticks.latest("NSE:B")
        assert [t.volume for t in got_b] == [40, 41, 42] and got_b[-1].depth == DEPTH
        # New ticks after the old ones, for an old key and a new one.
        writer = TickWriter(db, batch_size=100)
        late = make_tick("NSE:A", T0 + timedelta(seconds=9), 7)
        writer.add_many([late, make_tick("NSE:C", T0, 1)])
        writer.flush()
        assert db.ticks.latest("NSE:A", limit=1) == [late]
        assert db.ticks.count() == 14

        manifest = export_zip(db, tmp_path / "export.zip", "p")
    with zipfile.ZipFile(tmp_path / "export.zip") as zf:
        exported = list(csv.DictReader(io.StringIO(zf.read("ticks.csv").decode())))
    assert manifest["tables"]["ticks"]["rows"] == 14
    assert {r["key"] for r in exported} == {"NSE:A", "NSE:B", "NSE:C"}
    assert [r["depth"] for r in exported if r["key"] == "NSE:B" and r["volume"] == "42"] == [
        depth_text
    ]


def test_open_interest_and_depth_round_trip(tmp_path: Path) -> None:
    option = Tick(
        "NFO:NIFTY26DEC26000CE", T0, Decimal("101.35"), 75, 9000, Decimal("90"),
        Decimal("110.5"), Decimal("88"), Decimal("95.05"), DEPTH, oi=1_234_500, oi_close=1_200_000,
    )  # fmt: skip
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        db.ticks.insert_many([option])
        assert db.ticks.latest(option.key) == [option]


def test_a_batch_keeps_each_instruments_arrival_order_across_flushes(tmp_path: Path) -> None:
    keys = ["NSE:C", "NSE:A", "NSE:B", "NSE:A"]
    ticks = [make_tick(keys[i % 4], T0, i) for i in range(40)]  # one instant
    with Database.open(tmp_path / "t.db", KEY, create=True) as db:
        writer = TickWriter(db, batch_size=7)
        for start in range(0, 40, 9):
            writer.add_many(ticks[start : start + 9])
        assert writer.pending == 40 % 7
        writer.flush()
        assert writer.written == db.ticks.count() == 40
        for key in set(keys):
            assert db.ticks.latest(key, limit=100) == [t for t in ticks if t.key == key]


def _v10_row(tick: Tick, instrument: int) -> tuple[object, ...]:
    """A ``tick_log`` row as the v10 recorder wrote it (depth as its own JSON text)."""
    depth = None
    if tick.depth is not None:
        depth = json.dumps(
            {
                "b": [[str(x.price), x.quantity, x.orders] for x in tick.depth.bids],
                "a": [[str(x.price), x.quantity, x.orders] for x in tick.depth.asks],
            },
            separators=(",", ":"),
        )
    return (
        instrument, codec.to_ns(tick.ts), str(tick.last_price), tick.last_quantity, tick.volume,
        str(tick.open), str(tick.high), str(tick.low), str(tick.close), tick.oi, tick.oi_close,
        depth,
    )  # fmt: skip


def test_ticks_recorded_in_the_v10_log_read_back_exactly_after_migration_12(
    tmp_path: Path,
) -> None:
    path = tmp_path / "t.db"
    option = Tick(
        "NFO:NIFTY26DEC26000CE", T0, Decimal("101.350"), 75, 9000, Decimal("9E+1"),
        Decimal("110.5"), Decimal("0.05"), Decimal("95.05"), DEPTH, oi=1_234_500, oi_close=7,
    )  # fmt: skip
    plain = [make_tick("NSE:A", T0 + timedelta(seconds=i // 2), i) for i in range(6)]
    empty_book = Tick("NSE:A", T0, Decimal("100"), 1, 1, *(Decimal("100"),) * 4, Depth((), ()))
    rows = [_v10_row(option, 1)] + [_v10_row(t, 2) for t in (*plain, empty_book)]
    with (
        Database.open(path, KEY, create=True, target_version=BEFORE_TICK_ROWS) as old,
        old.transaction() as c,
    ):
        c.executemany("INSERT INTO tick_keys (id, key) VALUES (?, ?)",
                      [(1, option.key), (2, "NSE:A")])  # fmt: skip
        c.executemany("INSERT INTO tick_log VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    with Database.open(path, KEY) as db:
        assert db.schema_version == len(MIGRATIONS)
        assert db.ticks.latest(option.key) == [option]
        assert [str(p) for p in (option.last_price, option.open)] == ["101.350", "9E+1"]
        got = db.ticks.latest("NSE:A", limit=50)
        assert got == sorted([*plain, empty_book], key=lambda t: t.ts)  # arrival order kept
        # The converted text is the text the recorder writes today, byte for byte.
        stored = db.query("SELECT data FROM tick_rows ORDER BY rowid")
        assert [r[0] for r in stored] == [codec.tick_row(t) for t in (option, *plain, empty_book)]
        # New rows after the converted ones keep the readers' (time, arrival) order.
        db.ticks.insert_many([make_tick("NSE:A", T0, 99)])
        assert [t.volume for t in db.ticks.latest("NSE:A", limit=50)][:4] == [0, 1, 1, 99]
