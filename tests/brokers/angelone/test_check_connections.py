"""``dalal check-connections`` reports Angel One: session, last price and a tick, or why not."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from app.commands.check_connections import Check, render, run_checks
from app.settings import Settings
from services.brokers.angelone.session import CREDENTIALS, SESSION
from services.clock import IST
from tests.fakes.angelone import FakeAngel
from tests.kite_app.conftest import MemorySecrets


def settings_for(fake: FakeAngel) -> Settings:
    return Settings.model_validate(
        {
            "angelone": {
                "api_root": fake.base_url,
                "stream_url": fake.stream_url,
                "scrip_master_url": fake.master_url,
            }
        }
    )


def secrets_for(fake: FakeAngel, *, logged_in: bool) -> MemorySecrets:
    entries: dict[str, dict[str, Any]] = {
        CREDENTIALS: {"api_key": fake.api_key, "client_code": fake.client_code, "pin": fake.pin}
    }
    if logged_in:
        jwt, refresh, feed = fake.issue_session()
        entries[SESSION] = {
            "access_token": jwt,
            "refresh_token": refresh,
            "feed_token": feed,
            "client_code": fake.client_code,
            "expires_at": (datetime.now(IST) + timedelta(hours=2)).isoformat(),
        }
    return MemorySecrets(entries)


def angel(checks: list[Check]) -> dict[str, Check]:
    return {c.check: c for c in checks if c.broker == "angelone"}


async def test_everything_ok_against_the_fake(fake: FakeAngel) -> None:
    checks = await run_checks(
        settings_for(fake), secrets_for(fake, logged_in=True), symbol="NSE:SBIN", per_check=5.0
    )
    found = angel(checks)
    assert set(found) == {"login", "quote", "ticker"}
    assert all(c.ok for c in found.values()), render(checks)
    assert "A1234567" in found["login"].detail
    assert found["quote"].detail == "NSE:SBIN 812.4"
    assert "NSE:SBIN tick" in found["ticker"].detail
    assert "angelone" in render(checks)


async def test_not_logged_in_says_which_command(fake: FakeAngel) -> None:
    checks = await run_checks(
        settings_for(fake), secrets_for(fake, logged_in=False), symbol="NSE:SBIN", per_check=2.0
    )
    found = angel(checks)
    assert not any(c.ok for c in found.values())
    assert all("dalal login angelone" in c.detail for c in found.values())


async def test_expired_session_is_reported(fake: FakeAngel) -> None:
    secrets = secrets_for(fake, logged_in=True)
    fake.expire_sessions()
    checks = await run_checks(settings_for(fake), secrets, symbol="NSE:SBIN", per_check=2.0)
    found = angel(checks)
    assert not found["login"].ok and "session has expired" in found["login"].detail
    assert not found["ticker"].ok


async def test_angel_is_not_checked_when_not_configured(fake: FakeAngel) -> None:
    checks = await run_checks(Settings(), MemorySecrets(), symbol="NSE:SBIN", per_check=2.0)
    assert angel(checks) == {}
