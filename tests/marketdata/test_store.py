"""The history store: provenance, completeness per trading day, and refusing bad batches."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest

from services.calendar import IST
from services.domain import Bar, Timeframe
from services.marketdata.store import BadHistory, HistoryStore
from tests.marketdata.helpers import at, session_bars

KEY = "NSE:INFY"
MON = date(2026, 3, 2)
WED = date(2026, 3, 4)
FETCHED = datetime(2026, 3, 5, 18, 0, tzinfo=IST)


def test_a_full_day_of_minutes_is_complete_with_its_provenance(store: HistoryStore) -> None:
    bars = session_bars(KEY, Timeframe.M1, MON)
    assert len(bars) == 375
    assert store.write(bars, "yfinance", FETCHED) == 375
    [day] = store.coverage(KEY, Timeframe.M1, MON, MON)
    assert (day.bars, day.expected, day.complete, day.provider) == (375, 375, True, "yfinance")
    back = store.bars(KEY, Timeframe.M1, at(MON, 9, 15), at(MON, 15, 30))
    assert back == bars
    assert all(b.start.tzinfo == IST for b in back)
    provider, fetched = store.provenance(KEY, Timeframe.M1, at(MON, 9, 15))
    assert provider == "yfinance" and fetched == FETCHED


def test_gaps_name_short_days_and_days_never_fetched(store: HistoryStore) -> None:
    bars = session_bars(KEY, Timeframe.M5, MON)
    store.write(bars[:-3], "nse", FETCHED)  # the tail is missing
    gaps = store.gaps(KEY, Timeframe.M5, MON, WED)
    # Tuesday 3 March 2026 is Holi: not a gap. Wednesday was never fetched.
    assert [(g.day, g.bars, g.expected) for g in gaps] == [(MON, 72, 75), (WED, 0, 75)]
    store.write(bars[-3:], "yfinance", FETCHED)  # repaired from another provider
    assert [g.day for g in store.gaps(KEY, Timeframe.M5, MON, WED)] == [WED]


def test_special_sessions_expect_their_own_length(store: HistoryStore) -> None:
    muhurat = date(2025, 10, 21)
    store.write(session_bars(KEY, Timeframe.M1, muhurat), "kite", FETCHED)
    [day] = store.coverage(KEY, Timeframe.M1, muhurat, muhurat)
    assert (day.bars, day.expected, day.complete) == (60, 60, True)


def _shift(bar: Bar, **changes: object) -> Bar:
    return dataclasses.replace(bar, **changes)  # type: ignore[arg-type]


@pytest.mark.parametrize("mutate, message", [
    # a server in UTC that labelled IST times as UTC: every bar 5.5 hours late
    (lambda b: _shift(b, start=b.start.replace(tzinfo=UTC)), "outside the session"),
    (lambda b: _shift(b, start=b.start.replace(tzinfo=None)), "naive"),
    (lambda b: _shift(b, start=b.start + timedelta(days=1)), "not a trading day"),
    (lambda b: _shift(b, start=b.start + timedelta(minutes=2)), "not on the 5m grid"),
    (lambda b: _shift(b, close=Decimal("NaN")), "positive finite"),
    (lambda b: _shift(b, low=Decimal("0")), "positive finite"),
    (lambda b: _shift(b, high=b.low - 1), "high/low"),
    (lambda b: _shift(b, volume=-1), "volume"),
])
def test_one_bad_bar_refuses_the_whole_batch(store: HistoryStore, mutate, message) -> None:  # type: ignore[no-untyped-def]
    bars = session_bars(KEY, Timeframe.M5, date(2026, 3, 2))
    bars[40] = mutate(bars[40])
    with pytest.raises(BadHistory, match=message):
        store.write(bars, "yfinance", FETCHED)
    assert store.count() == 0
    assert store.fetched_days(KEY, Timeframe.M5, MON, MON) == set()


def test_a_bar_on_a_holiday_or_a_duplicate_is_refused(store: HistoryStore) -> None:
    bars = session_bars(KEY, Timeframe.D1, MON)
    holi = _shift(bars[0], start=bars[0].start + timedelta(days=1))
    with pytest.raises(BadHistory, match="2026-03-03 is not a trading day"):
        store.write([bars[0], holi], "yfinance", FETCHED)
    with pytest.raises(BadHistory, match="two bars"):
        store.write([bars[0], bars[0]], "yfinance", FETCHED)
    midnight = _shift(bars[0], start=datetime(2026, 3, 2, tzinfo=IST))
    with pytest.raises(BadHistory, match="stamped at the session open"):
        store.write([midnight], "yfinance", FETCHED)
    assert store.count() == 0


def test_a_fetched_empty_day_is_remembered(store: HistoryStore) -> None:
    store.record_empty(KEY, Timeframe.M1, [MON], "yfinance", FETCHED)
    assert store.fetched_days(KEY, Timeframe.M1, MON, WED) == {MON}
    assert [g.day for g in store.gaps(KEY, Timeframe.M1, MON, MON)] == [MON]


def test_rewriting_a_day_replaces_bars_without_duplicates(store: HistoryStore) -> None:
    store.write(session_bars(KEY, Timeframe.M15, MON, price="100"), "nse", FETCHED)
    store.write(session_bars(KEY, Timeframe.M15, MON, price="101"), "kite", FETCHED)
    bars = store.last(KEY, Timeframe.M15, 100, at(WED, 0, 0))
    assert len(bars) == 25 and {b.close for b in bars} == {Decimal("101")}
    assert store.provenance(KEY, Timeframe.M15, at(MON, 9, 15))[0] == "kite"
