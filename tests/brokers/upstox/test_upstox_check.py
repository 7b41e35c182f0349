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
        ("login", True), ("instruments", True), ("ticker", True)
    ]
    assert "AB1234" in results[0].detail and "static IP" in results[0].detail
    assert results[2].detail.startswith("NSE:INFY tick after")


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
