"""The tick encoding the recorder writes: the fast path gives exactly what json and timedelta
arithmetic give, so rows written before and after read back the same."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.clock import IST
from services.domain import Depth, DepthLevel, Tick
from services.storage import codec

PRICES = ["1500", "1500.05", "0.05", "-3.25", "1E+3", "26000.000", "0"]


def _reference_text(tick: Tick) -> str:
    def side(levels: tuple[DepthLevel, ...]) -> list[list[object]]:
        return [[str(x.price), x.quantity, x.orders] for x in levels]

    depth = None if tick.depth is None else {"b": side(tick.depth.bids), "a": side(tick.depth.asks)}
    fields = [
        str(tick.last_price), tick.last_quantity, tick.volume, str(tick.open), str(tick.high),
        str(tick.low), str(tick.close), tick.oi, tick.oi_close, depth,
    ]  # fmt: skip
    return json.dumps(fields, separators=(",", ":"))


@pytest.mark.parametrize("levels", [None, 0, 1, 5])
def test_a_ticks_text_is_the_json_of_its_exact_values(levels: int | None) -> None:
    depth = None
    if levels is not None:
        prices = PRICES[:levels]
        bids = tuple(DepthLevel(Decimal(p), 10 * i + 1, i + 1) for i, p in enumerate(prices))
        asks = tuple(DepthLevel(Decimal(p), 7 + i, 1) for i, p in enumerate(prices[::-1]))
        depth = Depth(bids, asks)
    for last in PRICES:
        tick = Tick(
            "NFO:X", datetime(2026, 12, 2, 9, 15, tzinfo=IST), Decimal(last), 75, 9000,
            Decimal("26000.000"), Decimal("1E+3"), Decimal("-3.25"), Decimal("0.05"), depth,
            oi=1_234_500, oi_close=1_200_000,
        )  # fmt: skip
        text = codec.tick_row(tick)
        assert text == _reference_text(tick)
        (back,) = codec.ticks_from(tick.key, [(codec.to_ns(tick.ts), text)])
        assert back == tick  # exact prices back, trailing zeros and exponents included
        assert [str(p) for p in (back.last_price, back.open, back.high)] == [
            last, "26000.000", "1E+3"
        ]


@pytest.mark.parametrize(
    "ts",
    [
        datetime(2026, 12, 2, 9, 15, 0, 123456, tzinfo=IST),
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # before the epoch
        datetime(2099, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_nanoseconds_are_exact_and_round_trip(ts: datetime) -> None:
    ns = codec.to_ns(ts)
    assert ns == ((ts - codec.EPOCH) // timedelta(microseconds=1)) * 1000
    assert codec.from_ns(ns) == ts


def test_a_batch_of_interleaved_instruments_is_stored_whole_and_in_arrival_order(
    tmp_path,
) -> None:
    import os

    from services.storage import Database, TickWriter
    from tests.storage.helpers import T0, make_tick

    db = Database.open(tmp_path / "t.db", os.urandom(32), create=True)
    try:
        keys = ["NSE:C", "NSE:A", "NSE:B"]
        # Same timestamp for all: only the arrival order (seq) tells them apart.
        ticks = [make_tick(keys[i % 3], T0, i) for i in range(23)]
        writer = TickWriter(db, batch_size=5)
        assert writer.add_many(ticks) == 4  # four full batches written on the way
        assert writer.pending == 3
        writer.flush()
        assert db.ticks.count() == 23
        for key in keys:
            mine = [t for t in ticks if t.key == key]
            assert db.ticks.latest(key, limit=50) == mine
    finally:
        db.close()
