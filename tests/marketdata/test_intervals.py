"""30-minute candles everywhere a chart goes; 1-second candles as fetched history only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import pairwise

from services.bars import BarBuilder, bucket_start
from services.bus import EventBus
from services.calendar import IST
from services.domain import LIVE_TIMEFRAMES, Timeframe
from services.marketdata.store import HistoryStore
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import Providers, make_router
from tests.marketdata.test_router import d


def test_thirty_minute_buckets_start_at_the_session_open() -> None:
    at = datetime(2026, 3, 9, 9, 50, 12, tzinfo=IST)
    assert bucket_start(at, Timeframe.M30) == datetime(2026, 3, 9, 9, 45, tzinfo=IST)
    assert Timeframe.M30 in BarBuilder(EventBus()).timeframes
    # 1-second bars are never built from ticks: sixty per minute per instrument.
    assert Timeframe.S1 not in LIVE_TIMEFRAMES
    assert Timeframe.S1 not in BarBuilder(EventBus()).timeframes


async def test_yahoo_thirty_minute_history_is_stored_complete(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.yahoo], store)
    report = await router.fetch("NSE:INFY", Timeframe.M30, d(2026, 3, 9), d(2026, 3, 14))
    assert report.stored == 5 * 13 and not report.unserved  # 09:15 ... 15:15, five days
    bars = store.bars("NSE:INFY", Timeframe.M30, d(2026, 3, 9), d(2026, 3, 10))
    assert [b.start.astimezone(IST).strftime("%H:%M") for b in bars][:3] == \
        ["09:15", "09:45", "10:15"]


async def test_one_second_candles_are_fetched_and_stored(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    router = make_router([providers.polygon], store)
    start = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)  # 10:00 in New York
    report = await router.fetch("US:AAPL", Timeframe.S1, start, start + timedelta(minutes=10))
    bars = store.bars("US:AAPL", Timeframe.S1, start, start + timedelta(minutes=10))
    assert report.stored == len(bars) > 0
    assert all((b.start - a.start).total_seconds() >= 1 for a, b in pairwise(bars))
