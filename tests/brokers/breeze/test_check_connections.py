"""``dalal check-connections`` reports Breeze: session, a quote and a tick, or why not."""

from __future__ import annotations

import threading

from app.commands.check_connections import render, run_checks
from app.settings import BreezeSettings, Settings
from services.brokers.breeze.session import BreezeSecrets, BreezeSession
from services.clock import SystemClock
from tests.brokers.breeze.conftest import Rig


async def login_today(rig: Rig) -> None:
    """check-connections runs on the real clock: log in on it too."""
    session = BreezeSession(BreezeSecrets(rig.secrets), SystemClock(), endpoints=rig.fake.endpoints)
    await session.complete_login({"API_Session": rig.fake.issue_api_session()})


def settings_for(rig: Rig) -> Settings:
    return Settings(watchlist=["NSE:INFY"], breeze=BreezeSettings(base_url=rig.fake.base_url))


async def test_breeze_rows_when_logged_in(rig: Rig) -> None:
    await login_today(rig)
    stop = threading.Event()

    def exchange() -> None:  # the fake market keeps ticking while the check waits
        while not stop.wait(0.2):
            rig.fake.push_ticks()

    pusher = threading.Thread(target=exchange, daemon=True)
    pusher.start()
    try:
        checks = await run_checks(settings_for(rig), rig.secrets, symbol=None, per_check=10.0)
    finally:
        stop.set()
        pusher.join(5)
    rows = {c.check: c for c in checks if c.broker == "breeze"}
    assert set(rows) == {"login", "quote", "ticker"}
    assert all(c.ok for c in rows.values()), render(checks)
    assert rows["quote"].detail == "NSE:INFY 1573.7"
    assert rows["ticker"].detail.startswith("NSE:INFY tick after")
    assert "breeze" in render(checks)


async def test_breeze_rows_say_why_when_not_logged_in(rig: Rig) -> None:
    checks = await run_checks(settings_for(rig), rig.secrets, symbol=None, per_check=2.0)
    rows = [c for c in checks if c.broker == "breeze"]
    assert [c.ok for c in rows] == [False, False, False]
    assert all("dalal login breeze" in c.detail for c in rows)


async def test_expired_session_is_reported_on_the_login_row(rig: Rig) -> None:
    await login_today(rig)
    rig.fake.expire_session()
    checks = await run_checks(settings_for(rig), rig.secrets, symbol=None, per_check=2.0)
    rows = {c.check: c for c in checks if c.broker == "breeze"}
    assert not rows["login"].ok and "log in" in rows["login"].detail
    assert not rows["ticker"].ok
