"""The app's one history service: a chart backfills real history from the providers in the
background, the status bar shows each provider, and nothing is faked beside real data."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.settings import Settings
from app.wiring import build_services
from services.bus import CONNECTION
from services.clock import ManualClock
from services.domain import ConnectionStatus, Timeframe
from services.marketdata.service import HISTORY
from services.storage import Database
from tests.fakes.marketdata import FakeMarketData
from tests.marketdata.conftest import NOW


async def test_a_chart_backfills_real_history_and_the_status_bar_names_the_provider(
    db: Database, fake: FakeMarketData, tmp_path: Path
) -> None:
    settings = Settings.model_validate({
        "ticks_per_second": 20, "models_enabled": False,
        "marketdata": {"providers": ["yfinance"], "yahoo_url": f"http://127.0.0.1:{fake.port}"},
    })
    services = build_services(settings, ManualClock(NOW), database=db)
    states = services.bus.subscribe(CONNECTION, "test-states")
    loaded = services.bus.subscribe(HISTORY, "test-history")
    await services.start()
    try:
        first = services.history("NSE:INFY", Timeframe.M15, 100)  # does not block
        assert len(first) < 100
        async with asyncio.timeout(60):
            [event] = await loaded.next_batch()
        assert (event.key, event.timeframe, event.bars) == ("NSE:INFY", Timeframe.M15, 100)
        bars = services.history("NSE:INFY", Timeframe.M15, 100)
        # Real session bars, then whatever the (always-open) simulator built since 18:00.
        real = [b for b in bars if b.start < NOW.replace(hour=15, minute=30)]
        assert len(bars) == 100 and len(real) >= 95 and all(b.closed for b in real)
        assert real[-1].start == NOW.replace(hour=15, minute=15)
        assert services.history_service is not None
        store = services.history_service.router.store  # type: ignore[union-attr]
        assert store is not None and store.provenance(
            "NSE:INFY", Timeframe.M15, bars[0].start)[0] == "yfinance"
        async with asyncio.timeout(10):
            while True:
                seen = {s.component: s for s in await states.next_batch()}
                if "data:yfinance" in seen:
                    break
        state = seen["data:yfinance"]
        assert state.status is ConnectionStatus.CONNECTED and state.detail == "delayed data"
    finally:
        await services.stop()


async def test_without_providers_a_chart_still_gets_synthetic_history(db: Database) -> None:
    settings = Settings.model_validate({"ticks_per_second": 20, "models_enabled": False})
    services = build_services(settings, ManualClock(NOW), database=db)
    assert services.history_service is not None and not services.history_service.fetching
    assert len(services.history("NSE:INFY", Timeframe.M5, 50)) == 50
