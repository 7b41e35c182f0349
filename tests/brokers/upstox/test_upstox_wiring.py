"""The app on Upstox: an expired token reaches the desktop's re-login listener, and the
Broker menu's login hands the new token to the orders, the feed and the order stream."""

from __future__ import annotations

import pytest

from app.settings import Settings, UpstoxSettings
from app.wiring import build_services
from services.brokers.errors import SessionExpired
from services.clock import SystemClock
from tests.brokers.upstox.test_upstox_session_stream import Store, free_port
from tests.fakes.upstox import FakeUpstox
from tests.widgets.test_upstox_desktop import browser


@pytest.fixture
def fake() -> FakeUpstox:
    with FakeUpstox(access_token=None) as server:
        yield server  # type: ignore[misc]


async def test_expiry_prompts_a_login_and_the_new_token_reaches_every_part(
    fake: FakeUpstox,
) -> None:
    secrets = Store()
    secrets.set("upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret})
    upstox = UpstoxSettings(
        base_url=fake.base_url, redirect_url=f"http://127.0.0.1:{free_port()}/cb/upstox"
    )
    services = build_services(
        Settings(broker="upstox", watchlist=["NSE:INFY"], upstox=upstox),
        SystemClock(),
        secrets=secrets,
    )
    prompts: list[bool] = []
    services.on_session_expired(lambda: prompts.append(True))
    assert services.live is not None
    with pytest.raises(SessionExpired):  # not logged in yet: the fake knows no token
        await services.broker.orders()
    assert prompts == [True]
    await services.broker_login(browser)
    token = services.broker.api.access_token  # type: ignore[union-attr]
    assert token in fake.access_tokens
    stored = secrets.get("upstox-session")
    assert stored is not None and stored["access_token"] == token
    assert await services.broker.orders() == []  # the same client now works
