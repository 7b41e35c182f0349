"""getCandleData: chunked to Angel's per-interval spans, paced at 3 a second, exact prices."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from services.brokers.angelone.history import COVERAGE, AngelHistory
from services.brokers.errors import HistoryNotCovered, InstrumentUnknown
from services.clock import IST, ManualClock
from services.domain import Timeframe
from tests.brokers.angelone.conftest import make_execution
from tests.fakes.angelone import FakeAngel

NOW = datetime(2026, 11, 25, 16, 0, tzinfo=IST)


def make_history(fake: FakeAngel) -> tuple[AngelHistory, ManualClock, list[float]]:
    clock = ManualClock(NOW)
    waits: list[float] = []

    async def advance(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    # History answers are large: a loaded machine needs more than the fault tests' 0.4 s.
    execution = make_execution(fake, timeout=5.0)
    return AngelHistory(execution, execution.instruments, clock=clock, sleep=advance), clock, waits


def test_coverage_declares_angels_spans() -> None:
    assert COVERAGE.span_per_call[Timeframe.M1] == timedelta(days=30)
    assert COVERAGE.span_per_call[Timeframe.H1] == timedelta(days=400)
    assert COVERAGE.span_per_call[Timeframe.D1] == timedelta(days=2000)
    assert COVERAGE.calls_per_second == 3


async def test_a_long_minute_range_is_chunked_and_paced(fake: FakeAngel) -> None:
    history, _, waits = make_history(fake)
    start = NOW - timedelta(days=95)
    bars = await history.candles("NSE:SBIN", Timeframe.M1, start, NOW)
    fmt = "%Y-%m-%d %H:%M"
    spans = [
        datetime.strptime(r["todate"], fmt) - datetime.strptime(r["fromdate"], fmt)
        for r in fake.candle_requests
    ]
    assert len(fake.candle_requests) == 4  # 30 + 30 + 30 + 5 days
    assert all(span <= timedelta(days=30) for span in spans)
    assert {r["interval"] for r in fake.candle_requests} == {"ONE_MINUTE"}
    # Four calls at 3 a second: the fourth waited for the first second to pass.
    assert sum(waits) == pytest.approx(1.0, abs=0.01)
    assert bars and all(start <= b.start < NOW for b in bars)
    assert [b.start for b in bars] == sorted({b.start for b in bars})  # no duplicates
    first = bars[0]
    assert isinstance(first.open, Decimal) and first.open == Decimal("812.4")
    assert first.start.tzinfo is not None and first.closed


async def test_daily_candles_in_one_call(fake: FakeAngel) -> None:
    history, _, _ = make_history(fake)
    bars = await history.candles("NSE:INFY", Timeframe.D1, NOW - timedelta(days=400), NOW)
    assert len(fake.candle_requests) == 1 and fake.candle_requests[0]["interval"] == "ONE_DAY"
    assert all(b.start.weekday() < 5 for b in bars)


async def test_refusals_before_any_request(fake: FakeAngel) -> None:
    history, _, _ = make_history(fake)
    with pytest.raises(HistoryNotCovered):
        await history.candles("NSE:SBIN", Timeframe.M1, NOW, NOW - timedelta(days=1))
    with pytest.raises(InstrumentUnknown):
        await history.candles("NSE:NOSUCH", Timeframe.M1, NOW - timedelta(days=1), NOW)
    assert fake.candle_requests == []
