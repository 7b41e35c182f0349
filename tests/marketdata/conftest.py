"""Fixtures for the market-data tests: a real (encrypted) profile database per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from services.calendar import IST
from services.clock import ManualClock
from services.marketdata.coverage import RateLimit
from services.marketdata.providers.base import HistorySource
from services.marketdata.router import MarketDataRouter
from services.marketdata.store import HistoryStore
from services.storage import Database
from tests.fakes.marketdata import FakeMarketData

# The fakes' "now": Friday 20 March 2026, after the close (a day's bhavcopy is out).
NOW = datetime(2026, 3, 20, 18, 0, tzinfo=IST)

KEY = bytes(range(32))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    with Database.open(tmp_path / "terminal.db", KEY, create=True) as database:
        yield database


@pytest.fixture
def store(db: Database) -> HistoryStore:
    return HistoryStore(db)


@pytest.fixture(scope="session")
def fake_server() -> Iterator[FakeMarketData]:
    with FakeMarketData() as server:
        yield server


@pytest.fixture
def fake(fake_server: FakeMarketData) -> Iterator[FakeMarketData]:
    """The shared fake, reset: no faults, counters at zero, yfinance's answer cache empty."""
    from services.marketdata.providers.yahoo import forget_responses

    fake_server.clear_faults()
    fake_server.requests.clear()
    fake_server.log.clear()
    fake_server.now = NOW
    fake_server.alphavantage.used = 0
    forget_responses()
    yield fake_server
    fake_server.clear_faults()


@pytest.fixture
async def providers(fake: FakeMarketData, tmp_path: Path) -> AsyncIterator[Providers]:
    made = Providers(fake, tmp_path)
    yield made
    for p in (made.yahoo, made.nse, made.alphavantage, made.polygon):
        await p.close()


class Providers:
    """Every provider, pointed at the fake."""

    def __init__(self, fake: FakeMarketData, tmp: Path) -> None:
        from services.marketdata.providers.alphavantage import AlphaVantageProvider
        from services.marketdata.providers.nse import NseArchivesProvider, NseEndpoints
        from services.marketdata.providers.polygon import PolygonProvider
        from services.marketdata.providers.yahoo import YahooProvider
        from tests.fakes.marketdata import alphavantage, polygon

        self.endpoints = NseEndpoints(website=fake.url("www.nseindia.com"),
                                      archives=fake.url("nsearchives.nseindia.com"))
        clock = ManualClock(NOW)
        self.yahoo = YahooProvider(base_url=f"http://127.0.0.1:{fake.port}",
                                   cache_dir=tmp / "yf", clock=clock)
        self.nse = NseArchivesProvider(self.endpoints, clock=clock)
        self.alphavantage = AlphaVantageProvider(lambda: alphavantage.KEY, clock=clock,
                                                 base_url=fake.url("www.alphavantage.co"))
        self.polygon = PolygonProvider(lambda: polygon.KEY, base_url=fake.url("api.polygon.io"),
                                       clock=clock)


def fast(rate: RateLimit) -> RateLimit:
    """The same daily cap, no pacing: tests do not wait for token buckets."""
    return RateLimit(per_second=1000.0, burst=1000, per_day=rate.per_day)


def make_router(
    providers: list[HistorySource], store: HistoryStore, **kw: Any
) -> MarketDataRouter:
    return MarketDataRouter(providers, store, clock=ManualClock(NOW), rate=fast, **kw)
