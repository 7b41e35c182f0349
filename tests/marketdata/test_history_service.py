"""The one history service: live bars over recorded ones over fetched ones, synthetic bars
only where nothing real reaches, and never a duplicate bucket."""

from __future__ import annotations

from datetime import date, datetime, timedelta

from services.clock import ManualClock
from services.domain import Bar, Timeframe
from services.marketdata.service import HistoryService
from services.marketdata.store import HistoryStore
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW, Providers, make_router
from tests.marketdata.helpers import session_bars

KEY = "NSE:INFY"
FRI = date(2026, 3, 20)


def _tagged(bars: list[Bar], volume: int) -> list[Bar]:
    return [Bar(b.key, b.timeframe, b.start, b.open, b.high, b.low, b.close, volume,
                closed=True) for b in bars]


async def test_sources_stack_newest_first_without_duplicates(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    today = session_bars(KEY, Timeframe.M15, FRI)
    live = _tagged(today[-4:], 1)  # built from ticks this session
    recorded = _tagged(today[-10:], 2)  # recorded in an earlier run of the same day

    def synthetic(key: str, tf: Timeframe, count: int, end: datetime) -> list[Bar]:
        raise AssertionError("real history covers this: no synthetic bars")

    service = HistoryService(
        make_router([providers.yahoo], store), live=lambda k, tf: live,
        recorded=lambda k, tf, n, end: recorded, fallback=synthetic, clock=ManualClock(NOW))
    bars = await service.bars(KEY, Timeframe.M15, 60)
    assert len(bars) == 60 and len({b.start for b in bars}) == 60
    assert [b.volume for b in bars[-4:]] == [1] * 4
    assert [b.volume for b in bars[-10:-4]] == [2] * 6
    assert all(b.volume not in (1, 2) for b in bars[:-10])  # fetched (the fake's volumes)
    assert store.count(KEY) >= 50
    # window(): the same from what is stored, without asking any provider.
    calls = fake.count("query2.finance.yahoo.com")
    assert [b.start for b in service.window(KEY, Timeframe.M15, 60)] == [b.start for b in bars]
    assert fake.count("query2.finance.yahoo.com") == calls


async def test_synthetic_history_fills_only_what_no_provider_reaches(
    fake: FakeMarketData, providers: Providers, store: HistoryStore
) -> None:
    asked: list[int] = []

    def synthetic(key: str, tf: Timeframe, count: int, end: datetime) -> list[Bar]:
        asked.append(count)
        start = end - timedelta(minutes=count)
        return [Bar(key, tf, start + timedelta(minutes=i), *(today[0].open,) * 4, 0,
                    closed=True) for i in range(count)]

    today = session_bars("NFO:NIFTY26MARFUT", Timeframe.M1, FRI)
    service = HistoryService(make_router([providers.yahoo], store), fallback=synthetic,
                             clock=ManualClock(NOW))
    bars = await service.bars("NFO:NIFTY26MARFUT", Timeframe.M1, 30)
    assert asked == [30] and len(bars) == 30  # Yahoo has no F&O: all synthetic
    assert service.last_error is not None and "broker" in service.last_error


async def test_the_holiday_list_is_refreshed_weekly_and_cached(
    fake: FakeMarketData, providers: Providers, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import os

    from services import calendar
    from services.marketdata.service import refresh_holidays

    path = tmp_path / calendar.CACHE_NAME
    try:
        assert await refresh_holidays(providers.endpoints, path)
        assert calendar.default_calendar().source == "nse-cache"
        assert not await refresh_holidays(providers.endpoints, path)  # fresh: not asked again
        old = path.stat().st_mtime - 8 * 86_400
        os.utime(path, (old, old))
        assert await refresh_holidays(providers.endpoints, path)
        assert fake.count("www.nseindia.com", "/api/holiday-master") == 2
    finally:
        calendar.install(calendar.ExchangeCalendar())
