"""Candles travel to cluster workers packed into arrays and come back as the same bars."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

from services.backtest.candles import Candles
from services.backtest.data import simulator_bars
from services.clock import IST
from services.domain import Bar, Timeframe

D = Decimal


def _bar(key: str, start: datetime, price: str, volume: int = 100) -> Bar:
    p = D(price)
    return Bar(key, Timeframe.M1, start, p, p + D("0.50"), p - D("0.5"), p, volume, True)


def _same(a: tuple[Bar, ...], b: tuple[Bar, ...]) -> bool:
    # repr tells Decimal('1.50') from Decimal('1.5') and names the tzinfo; == would not.
    return [repr(x) for x in a] == [repr(x) for x in b]


def test_the_simulators_bars_come_back_identical_and_smaller() -> None:
    bars = simulator_bars(["NSE:INFY", "NSE:TCS"], Timeframe.M1, date(2026, 11, 2),
                          date(2026, 11, 6))
    packed = pickle.dumps(Candles(bars), protocol=5)
    back = pickle.loads(packed)
    assert _same(back.bars, tuple(bars))
    assert len(back) == len(bars)
    assert len(packed) < 0.7 * len(pickle.dumps(tuple(bars), protocol=5))
    # A worker passing them on sends what it received, unchanged.
    assert pickle.dumps(back, protocol=5) == packed
    assert pickle.loads(pickle.dumps(back)).bars == back.bars


def test_exponents_signs_folds_and_large_numbers_survive() -> None:
    new_york = ZoneInfo("America/New_York")
    first = datetime(2026, 11, 1, 1, 30, tzinfo=new_york)  # the hour that happens twice
    bars = (
        _bar("NSE:A", first, "1.5"),
        _bar("NSE:A", first.replace(fold=1), "1.50"),
        _bar("NSE:B", first + timedelta(minutes=1, microseconds=7), "-3.25E+3"),
        _bar("NSE:B", first + timedelta(minutes=2), "123456789012345.6789", 2**62),
        replace(_bar("NSE:C", first + timedelta(minutes=3), "0.00"), closed=False,
                timeframe=Timeframe.M5),
    )
    back = pickle.loads(pickle.dumps(Candles(bars)))
    assert _same(back.bars, bars)
    assert [b.start.fold for b in back.bars] == [0, 1, 0, 0, 0]
    assert back.bars[0].start.utcoffset() != back.bars[1].start.utcoffset()


def test_bars_that_cannot_be_packed_exactly_travel_as_records() -> None:
    start = datetime(2026, 11, 2, 9, 15, tzinfo=IST)
    cases = [
        (_bar("NSE:A", start, "1"), _bar("NSE:A", start.astimezone(UTC), "1")),
        (_bar("NSE:A", start.replace(tzinfo=None), "1"),),
        (replace(_bar("NSE:A", start, "1"), close=D("NaN")),),
        (replace(_bar("NSE:A", start, "1"), low=D("-0.00")),),
        (replace(_bar("NSE:A", start, "1"), high=D(2**70)),),
        (_bar("NSE:A", start, "1", volume=2**64),),
    ]
    for bars in cases:
        back = pickle.loads(pickle.dumps(Candles(bars)))
        assert _same(back.bars, bars)
    assert Candles(()).bars == () and pickle.loads(pickle.dumps(Candles(()))).bars == ()
