"""Breeze as the terminal's venue: the day's API-call count lives in the profile database, so
a restart does not believe it has a fresh 5,000 calls."""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.settings import BreezeSettings, Settings
from app.wiring import build_services
from services.brokers.breeze.config import API_COUNT_NAME
from services.brokers.breeze.session import BreezeSecrets, BreezeSession
from services.clock import SystemClock, to_ist
from services.storage import Database
from tests.brokers.breeze.conftest import MemorySecrets
from tests.fakes.breeze.server import FakeBreeze


async def test_api_calls_counted_in_the_profile_database_across_a_restart(
    tmp_path: Path,
) -> None:
    with FakeBreeze() as fake:
        secrets = MemorySecrets()
        secrets.set("breeze", {"api_key": fake.api_key, "api_secret": fake.api_secret})
        clock = SystemClock()
        session = BreezeSession(BreezeSecrets(secrets), clock, endpoints=fake.endpoints)
        await session.complete_login({"API_Session": fake.issue_api_session()})
        settings = Settings(broker="breeze", breeze=BreezeSettings(base_url=fake.base_url))
        db = Database.open(tmp_path / "p.db", b"k" * 32, create=True)
        try:
            services = build_services(settings, clock, database=db, secrets=secrets)
            assert services.breeze is not None and services.feed_name == "breeze"
            await services.breeze.broker.funds()
            await services.breeze.broker.funds()
            day = to_ist(clock.now()).date()
            rows: list[tuple[object, ...]] = []
            for _ in range(100):  # the count is written off the loop, not awaited
                rows = db.query(
                    "SELECT sent FROM order_counts WHERE broker = ? AND day = ?",
                    (API_COUNT_NAME, day.isoformat()),
                )
                if rows and rows[0][0] == 2:
                    break
                await asyncio.sleep(0.02)
            assert rows == [(2,)]
            restarted = build_services(settings, clock, database=db, secrets=secrets)
            assert restarted.breeze is not None
            assert restarted.breeze.broker.api_calls.sent_today == 2
        finally:
            db.close()
