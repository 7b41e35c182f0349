"""The simulated market's past is made once per profile, kept, and the same on every start;
BSE (SENSEX and a few stocks) is part of the simulated universe."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from app.settings import Settings
from app.wiring import build_services
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import Exchange, InstrumentKind, Timeframe
from services.instruments import bundled_universe
from services.marketdata.store import HistoryStore
from services.simulator import MarketSimulator
from services.simulator.backfill import SIMULATOR_PROVIDER, persisted_history, today_open
from services.storage import Database

NOW = datetime(2026, 1, 7, 11, 0, tzinfo=IST)  # a Wednesday, mid-session


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "terminal.db", os.urandom(32), create=True)
    yield database
    database.close()


def simulator(seed: int = 42, at: datetime = NOW) -> MarketSimulator:
    universe, refs = bundled_universe(at.date())
    return MarketSimulator(universe, refs, EventBus(), ManualClock(at), seed=seed)


def test_bse_is_simulated() -> None:
    universe, _refs = bundled_universe(NOW.date())
    bse = {i.key: i for i in universe if i.exchange is Exchange.BSE}
    assert bse["BSE:SENSEX"].kind is InstrumentKind.INDEX
    assert {"BSE:RELIANCE", "BSE:HDFCBANK", "BSE:INFY"} <= set(bse)
    sim = simulator()
    ticks = sim.step(NOW, 5000)
    assert any(t.key.startswith("BSE:") for t in ticks)
    assert sim.history("BSE:SENSEX", Timeframe.M5, 10, NOW)[-1].close > 0


def test_previous_sessions_do_not_depend_on_the_live_price() -> None:
    fresh, ticking = simulator(), simulator()
    ticking.step(NOW, 20_000)  # the live walk has moved
    end = today_open(NOW)
    a = fresh.previous_sessions("NSE:INFY", Timeframe.M5, 200, end)
    b = ticking.previous_sessions("NSE:INFY", Timeframe.M5, 200, end)
    assert a == b and len(a) == 200 and a[-1].start < end
    other = simulator(seed=7).previous_sessions("NSE:INFY", Timeframe.M5, 200, end)
    assert other != a


def test_history_is_made_once_then_read_back(db: Database) -> None:
    store = HistoryStore(db)
    first = persisted_history(store, simulator(), "NSE:INFY", Timeframe.M5, 300, NOW)
    assert len(first) == 300
    assert store.provenance("NSE:INFY", Timeframe.M5, first[0].start)[0] == SIMULATOR_PROVIDER
    # A later start, with another seed even: the kept past does not change.
    later = NOW + timedelta(hours=3)
    again = persisted_history(store, simulator(seed=9), "NSE:INFY", Timeframe.M5, 300, later)
    assert again == first
    assert store.count("NSE:INFY") == 300


async def test_the_chart_shows_the_same_yesterday_on_every_start(db: Database) -> None:
    seen = []
    for minutes in (0, 47):
        clock = ManualClock(NOW + timedelta(minutes=minutes))
        services = build_services(Settings(ticks_per_second=100), clock=clock, database=db)
        await services.start()
        try:
            bars = services.history("NSE:INFY", Timeframe.M5, 300)
        finally:
            await services.stop()
        yesterday = [b for b in bars if b.start < today_open(clock.now())]
        assert yesterday and bars[-1].start >= today_open(clock.now())
        seen.append(yesterday[-100:])
    assert seen[0] == seen[1]
