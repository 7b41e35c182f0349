"""Candles through the SDK's historical v2 call, chunked under 1,000 candles per answer."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from services.brokers.breeze.history import BreezeHistory
from services.brokers.errors import HistoryNotCovered, InstrumentUnknown
from services.clock import IST
from services.domain import Timeframe
from tests.brokers.breeze.conftest import Rig


async def history(rig: Rig) -> BreezeHistory:
    await rig.login()
    provider = rig.parts().history
    assert isinstance(provider, BreezeHistory)
    return provider


async def test_a_week_of_minutes_comes_in_chunks_of_at_most_a_thousand(rig: Rig) -> None:
    provider = await history(rig)
    start = datetime(2026, 11, 16, 9, 15, tzinfo=IST)  # Monday
    end = datetime(2026, 11, 21, 0, 0, tzinfo=IST)  # Saturday: five sessions
    bars = await provider.candles("NSE:RELIANCE", Timeframe.M1, start, end)
    assert len(bars) == 5 * 375
    requests = [p for m, p, _, _ in rig.fake.journal.requests if p.endswith("historicalcharts")]
    assert len(requests) == provider.requests == 3  # 2 + 2 + 1 calendar days
    assert [b.start for b in bars] == sorted({b.start for b in bars})
    first = bars[0]
    assert first.start == start and first.start.tzinfo is not None
    assert isinstance(first.open, Decimal) and first.closed
    assert first.close - first.open == Decimal("0.10")  # exact: one tick, no float noise
    assert all(start <= b.start < end for b in bars)


async def test_options_and_daily_candles(rig: Rig) -> None:
    provider = await history(rig)
    master = await rig.parts().execution.masters.get()  # type: ignore[union-attr]
    option = next(k for k, c in master.by_key.items() if c.token == "35001")
    end = datetime(2026, 11, 25, 0, 0, tzinfo=IST)
    bars = await provider.candles(option, Timeframe.D1, end - timedelta(days=30), end)
    assert len(bars) == 22 and all(b.timeframe is Timeframe.D1 for b in bars)  # weekdays
    _, _, headers, _ = rig.fake.journal.requests[-1]
    assert headers["apikey"] == rig.fake.api_key  # v2: key and session headers, no checksum


async def test_what_breeze_does_not_offer_is_refused_before_any_request(rig: Rig) -> None:
    provider = await history(rig)
    start = datetime(2026, 11, 16, 9, 15, tzinfo=IST)
    calls = len(rig.fake.journal.requests)
    with pytest.raises(HistoryNotCovered, match="15m"):
        await provider.candles("NSE:RELIANCE", Timeframe.M15, start, start + timedelta(hours=1))
    with pytest.raises(InstrumentUnknown):
        await provider.candles("NSE:NOPE", Timeframe.M1, start, start + timedelta(hours=1))
    assert len(rig.fake.journal.requests) == calls + 1  # only the master download


def test_coverage_is_every_breeze_interval_the_terminal_has() -> None:
    """Breeze's 1-second and 30-minute candles are not offered only because the terminal has
    no such ``Timeframe`` (services/brokers/breeze/history.py says why); every timeframe
    Breeze can serve is in the coverage with a span that keeps to 1,000 candles a call."""
    from services.brokers.breeze.history import COVERAGE, NATIVE
    from services.domain import Timeframe

    servable = {tf for tf in Timeframe if tf.value in NATIVE}
    assert set(COVERAGE.intervals) == servable == {Timeframe.M1, Timeframe.M5, Timeframe.D1}
    assert set(COVERAGE.span_per_call) == servable
    for tf, span in COVERAGE.span_per_call.items():
        sessions = span.days if tf is not Timeframe.D1 else 0
        per_session = {Timeframe.M1: 375, Timeframe.M5: 75}.get(tf, 0)
        assert sessions * per_session <= 1000 or tf is Timeframe.D1
    assert not {"1s", "30m"} & {tf.value for tf in Timeframe}
