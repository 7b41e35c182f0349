"""With a profile database, a Kite chart's history goes through the market-data router:
stored with provenance, asked of Kite once, and Kite's circuit shown like any provider's."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.wiring import build_services
from services.clock import ManualClock
from services.domain import Timeframe
from services.marketdata.service import HISTORY
from services.storage import Database
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_wiring import NOW, secrets_for

KEY = bytes(range(32))


async def test_kite_chart_history_is_stored_through_the_router(
    fake: FakeKite, tmp_path: Path
) -> None:
    with Database.open(tmp_path / "terminal.db", KEY, create=True) as db:
        settings = kite_settings(fake).model_copy(update={"models_enabled": False})
        services = build_services(settings, ManualClock(NOW), database=db,
                                  secrets=secrets_for(fake))
        services.bus.bind_loop(asyncio.get_running_loop())
        assert services.live is not None and services.history_service is not None
        router = services.history_service.router
        assert router is not None and [p.name for p in router.providers] == ["broker:kite"]
        await services.live.load_instruments()
        loaded = services.bus.subscribe(HISTORY, "test-history")
        try:
            services.history("NSE:INFY", Timeframe.M5, 60)  # does not block
            async with asyncio.timeout(30):
                [event] = await loaded.next_batch()
            assert event.key == "NSE:INFY" and event.bars >= 60
            bars = services.history("NSE:INFY", Timeframe.M5, 60)
            assert len(bars) == 60 and all(b.closed for b in bars)
            assert router.store is not None
            source = router.store.provenance("NSE:INFY", Timeframe.M5, bars[0].start)[0]
            assert source == "broker:kite"
            asked = fake.journal.count("GET", "/instruments/historical/")
            assert asked >= 1
            # Another chart of the same instrument and interval reads the store, not Kite.
            again = await services.load_history("NSE:INFY", Timeframe.M5, 60)
            assert [b.start for b in again] == [b.start for b in bars]
            assert fake.journal.count("GET", "/instruments/historical/") == asked
        finally:
            await services.stop()
