"""``dalal check-connections`` for Upstox: usable, or not and why (against the fake)."""

from __future__ import annotations

from datetime import timedelta

from services.brokers.upstox.check import check_upstox
from services.brokers.upstox.session import SESSION
from services.clock import ManualClock
from tests.brokers.upstox.conftest import endpoints_for
from tests.brokers.upstox.test_upstox_session_stream import Store
from tests.fakes.upstox import FakeUpstox


def store_for(fake: FakeUpstox, clock: ManualClock, token: str | None) -> Store:
    store = Store()
    store.set("upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret})
    if token is not None:
        expires = clock.now() + timedelta(hours=10)
        store.set(SESSION, {"access_token": token, "expires_at": expires.isoformat()})
    return store


async def test_a_usable_upstox_reports_login_instruments_and_a_tick(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    store = store_for(fake, clock, "fake-access-token")
    results = await check_upstox(
        store, "NSE:INFY", 5.0, clock=clock, endpoints=endpoints_for(fake)
    )
    assert [(r.check, r.ok) for r in results] == [
        ("login", True), ("static IP", True), ("instruments", True), ("ticker", True)
    ]
    assert "AB1234" in results[0].detail and "static IP" in results[0].detail
    assert "primary 203.0.113.7" in results[1].detail and "secondary" not in results[1].detail
    assert results[3].detail.startswith("NSE:INFY tick after")


async def test_an_account_without_a_static_ip_is_told_orders_will_be_refused(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    fake.static_ips = {"primary_ip": None, "secondary_ip": None}
    results = await check_upstox(
        store_for(fake, clock, "fake-access-token"), "NSE:INFY", 5.0, clock=clock,
        endpoints=endpoints_for(fake),
    )
    ip = next(r for r in results if r.check == "static IP")
    assert not ip.ok
    assert "no static IP registered" in ip.detail and "UDAPI1154" in ip.detail
    fake.static_ips = {"primary_ip": "203.0.113.7", "secondary_ip": "198.51.100.9"}
    results = await check_upstox(
        store_for(fake, clock, "fake-access-token"), "NSE:INFY", 5.0, clock=clock,
        endpoints=endpoints_for(fake),
    )
    ip = next(r for r in results if r.check == "static IP")
    assert ip.ok and "primary 203.0.113.7 and secondary 198.51.100.9" in ip.detail


async def test_not_logged_in_or_expired_says_what_to_run(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    none = await check_upstox(
        store_for(fake, clock, None), "NSE:INFY", 2.0, clock=clock, endpoints=endpoints_for(fake)
    )
    assert [r.ok for r in none] == [False, False, False]
    assert all("dalal login upstox" in r.detail for r in none)
    fake.expire_session()
    dead = await check_upstox(
        store_for(fake, clock, "fake-access-token"), "NSE:INFY", 2.0, clock=clock,
        endpoints=endpoints_for(fake),
    )
    assert [(r.check, r.ok) for r in dead] == [("login", False)]
    assert "expired" in dead[0].detail and "dalal login upstox" in dead[0].detail


async def test_dalal_check_connections_shows_upstoxs_static_ip(fake: FakeUpstox) -> None:
    """The command's rows for Upstox carry the registered static IPs, or say none is."""
    from app.commands.check_connections import render, run_checks
    from app.settings import Settings, UpstoxSettings
    from services.clock import SystemClock

    store = store_for(fake, ManualClock(SystemClock().now()), "fake-access-token")
    settings = Settings(watchlist=["NSE:INFY"], upstox=UpstoxSettings(base_url=fake.base_url))
    checks = await run_checks(settings, store, symbol=None, per_check=5.0)
    rows = {c.check: c for c in checks if c.broker == "upstox"}
    assert rows["static IP"].ok, render(checks)
    assert "primary 203.0.113.7" in rows["static IP"].detail
    fake.static_ips = {"primary_ip": None, "secondary_ip": None}
    checks = await run_checks(settings, store, symbol=None, per_check=5.0)
    rows = {c.check: c for c in checks if c.broker == "upstox"}
    assert not rows["static IP"].ok and "UDAPI1154" in rows["static IP"].detail
    assert "static IP" in render(checks)
