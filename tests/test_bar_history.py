"""The bar builder's packed closed bars read back exactly what went in, in far less memory."""

from __future__ import annotations

import tracemalloc
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from services.bar_history import ClosedBars
from services.clock import IST
from services.domain import Bar, Timeframe

START = datetime(2026, 3, 2, 9, 15, tzinfo=IST)


def _bar(i: int, o: str, h: str, lo: str, c: str, volume: int = 100) -> Bar:
    when = START + timedelta(minutes=i)
    return Bar("NSE:X", Timeframe.M1, when, Decimal(o), Decimal(h), Decimal(lo), Decimal(c),
               volume, closed=True)  # fmt: skip


def test_prices_come_back_exact_with_their_trailing_zeros() -> None:
    bars = [
        _bar(0, "26000", "26000.00", "25999.95", "26000.0"),
        _bar(1, "0.05", "0.10", "0.05", "0.05"),
        _bar(2, "83.0025", "83.0100", "82.9975", "83.0000", 10**12),
        _bar(3, "123456789.12", "123456789.99", "123456789.01", "123456789.50"),
    ]
    packed = ClosedBars("NSE:X", Timeframe.M1, 10)
    packed.extend(bars)
    assert list(packed) == bars and packed.unpacked == 4  # records until packed
    assert packed.pack(3) == 3 and packed.pack(100) == 1 and packed.unpacked == 0
    out = list(packed)
    assert out == bars
    assert [str(b.high) for b in out] == [str(b.high) for b in bars]  # "26000.00", "0.10"...
    assert [str(b.close) for b in out] == ["26000.0", "0.05", "83.0000", "123456789.50"]
    assert all(b.start.tzinfo is not None for b in out) and packed.last_start() == bars[-1].start


def test_the_oldest_bars_drop_off_at_maxlen_like_a_deque() -> None:
    packed = ClosedBars("NSE:X", Timeframe.M1, 3)
    bars = [_bar(i, "10", "11", "9", f"10.{i}") for i in range(5)]
    packed.extend(bars[:2])
    packed.pack(10)
    packed.extend(bars[2:])
    assert len(packed) == 3 and list(packed) == bars[2:]
    packed.pack(10)
    assert len(packed) == 3 and list(packed) == bars[2:]
    packed.clear()
    assert not packed and packed.last_start() is None and list(packed) == []


def test_a_price_that_does_not_round_trip_keeps_the_records_themselves() -> None:
    packed = ClosedBars("NSE:X", Timeframe.M1, 4)
    first = _bar(0, "10", "11", "9", "10.5")
    odd = _bar(1, "10", "11", "9", "10.12345678901234567890")  # 22 digits: not a float
    later = _bar(2, "10", "11", "9", "10")
    packed.extend([first, odd, later])
    assert packed.pack(10) == 3
    assert list(packed) == [first, odd, later]
    assert str(list(packed)[1].close) == "10.12345678901234567890"


def test_a_seeded_bar_in_another_zone_is_the_same_instant() -> None:
    packed = ClosedBars("NSE:X", Timeframe.M1, 4)
    bar = _bar(0, "10", "11", "9", "10")
    utc = Bar(bar.key, bar.timeframe, bar.start.astimezone(UTC), bar.open, bar.high, bar.low,
              bar.close, bar.volume, closed=True)  # fmt: skip
    packed.append(utc)
    packed.pack(1)
    assert list(packed) == [bar]


def test_a_session_of_bars_costs_tens_of_bytes_each() -> None:
    bars = [_bar(i, "2500.05", "2501.10", "2499.95", "2500.60", 1234) for i in range(375)]
    for bar in bars:  # the time zone's own cache of offsets is not the store's
        bar.start.timestamp()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        packed = ClosedBars("NSE:X", Timeframe.M1, 2000)
        packed.extend(bars)
        packed.pack(len(bars))
        per_bar = (tracemalloc.get_traced_memory()[0] - before) / len(bars)
    finally:
        tracemalloc.stop()
    assert per_bar < 80, per_bar  # Bar records: ~500 bytes each with their Decimals
    assert list(packed) == bars


def test_the_builder_packs_a_minute_boundary_a_little_per_batch() -> None:
    """Thousands of bars close at a minute boundary; the builder packs a bounded number per
    tick batch, and what a chart reads is the same before and after."""
    from services.bars import PACK_PER_BATCH, BarBuilder
    from services.bus import EventBus
    from services.domain import Tick

    builder = BarBuilder(EventBus(), (Timeframe.M1,))

    def tick(key: str, when: datetime, price: str) -> Tick:
        p = Decimal(price)
        return Tick(key, when, p, 1, 1, p, p, p, p)

    keys = [f"NSE:S{i}" for i in range(300)]
    builder.on_ticks([tick(k, START, "100.05") for k in keys])
    builder.on_ticks([tick(k, START + timedelta(seconds=61), "100.10") for k in keys])
    # The second batch closed 300 one-minute bars and packed no more than its budget.
    waiting = sum(builder._history_of(k, Timeframe.M1).unpacked for k in keys)
    assert 300 - PACK_PER_BATCH <= waiting < 300
    before = {k: builder.bars(k, Timeframe.M1) for k in keys}
    while builder.pack(PACK_PER_BATCH):
        pass
    assert sum(builder._history_of(k, Timeframe.M1).unpacked for k in keys) == 0
    assert {k: builder.bars(k, Timeframe.M1) for k in keys} == before
    assert str(before[keys[0]][0].close) == "100.05" and before[keys[0]][0].closed
