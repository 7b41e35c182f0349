"""A new day's token reaches a running process without a restart, for any broker in use
(``services.brokers.live.SessionRenewal``): polled while the session is expired, at once on
``wake`` (SIGHUP in headless). Shown on Kite and Upstox, each through its official SDK
against its fake; the broker accepting the next call is the proof the token arrived."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from app.settings import KiteSettings, Settings, UpstoxSettings
from services.bars import BarBuilder
from services.brokers import registry
from services.brokers.errors import SessionExpired
from services.brokers.live import LiveBroker, SessionRenewal
from services.bus import EventBus
from services.clock import IST, SystemClock
from services.instruments import InstrumentRegistry
from tests.fakes.kite_server import FakeKite
from tests.fakes.upstox import FakeUpstox
from tests.kite_app.conftest import MemorySecrets

BROKERS = ["kite", "upstox"]


def stored(token: str, expires: datetime) -> dict[str, str]:
    return {"access_token": token, "expires_at": expires.isoformat()}


@contextlib.contextmanager
def fake_broker(name: str) -> Iterator[tuple[Any, dict[str, object], MemorySecrets]]:
    """The broker's fake, its settings section, and a store with a valid token in it."""
    later = datetime.now(IST) + timedelta(hours=12)
    if name == "kite":
        with FakeKite(hang_seconds=1.0) as kite:
            section = Settings(
                kite=KiteSettings(
                    api_root=kite.base_url,
                    login_url=f"{kite.base_url}/connect/login",
                    ticker_url=f"ws://127.0.0.1:{kite.port}/ws",
                )
            ).broker_section("kite")
            keys = {"api_key": kite.api_key, "api_secret": kite.api_secret}
            yield kite, section, MemorySecrets(
                {"kite": keys, "kite-session": stored("fakeaccesstoken", later)}
            )
    else:
        with FakeUpstox(hang_seconds=1.0) as upstox:
            section = Settings(upstox=UpstoxSettings(base_url=upstox.base_url)).broker_section(
                "upstox"
            )
            keys = {"api_key": upstox.client_id, "api_secret": upstox.client_secret}
            yield upstox, section, MemorySecrets(
                {"upstox": keys, "upstox-session": stored("fake-access-token", later)}
            )


@contextlib.asynccontextmanager
async def running(
    name: str, section: dict[str, object], secrets: MemorySecrets, poll: float
) -> AsyncIterator[tuple[LiveBroker, SessionRenewal]]:
    clock = SystemClock()
    bus = EventBus()
    live = LiveBroker(
        name,
        registry.BrokerContext(clock, bus, secrets=secrets, settings=section),
        InstrumentRegistry(),
        BarBuilder(bus, clock=clock),
    )
    live.bind_loop(asyncio.get_running_loop())
    renewal = SessionRenewal(live, poll_interval=poll)
    task = asyncio.create_task(renewal.run())
    try:
        yield live, renewal
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def until(condition: Callable[[], bool], within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def expire(fake: Any, live: LiveBroker) -> None:
    """The broker drops the day's token: the next call is refused and the session ends."""
    assert live.execution is not None and live.session_valid
    await live.execution.funds()
    fake.expire_session()
    with pytest.raises(SessionExpired):
        await live.execution.funds()
    await until(lambda: not live.session_valid)
    assert live.session_state == "expired"


@pytest.mark.parametrize("name", BROKERS)
async def test_polling_takes_the_token_a_login_elsewhere_saved(name: str) -> None:
    with fake_broker(name) as (fake, section, secrets):
        async with running(name, section, secrets, poll=0.1) as (live, renewal):
            await expire(fake, live)
            await asyncio.sleep(0.4)  # several polls find only the refused token
            assert not live.session_valid and renewal.renewals == 0
            # `dalal login NAME` in another process: a new token with its own expiry.
            expires = datetime.now(IST).replace(microsecond=0) + timedelta(hours=9)
            fake.access_tokens.add("next-day-token")
            secrets.set(f"{name}-session", stored("next-day-token", expires))
            await until(lambda: live.session_valid)
            assert renewal.renewals == 1 and live.access_token == "next-day-token"
            assert live.expires_at == expires  # tomorrow's expiry is watched too
            assert live.execution is not None
            await live.execution.funds()  # the SDK client itself sends the new token


@pytest.mark.parametrize("name", BROKERS)
async def test_wake_takes_it_at_once_without_waiting_for_a_poll(name: str) -> None:
    with fake_broker(name) as (fake, section, secrets):
        async with running(name, section, secrets, poll=600.0) as (live, renewal):
            await expire(fake, live)
            expires = datetime.now(IST) + timedelta(hours=9)
            fake.access_tokens.add("next-day-token")
            secrets.set(f"{name}-session", stored("next-day-token", expires))
            await asyncio.sleep(0.2)
            assert not live.session_valid  # no poll for ten minutes
            renewal.wake()  # SIGHUP
            await until(lambda: live.session_valid, within=5.0)
            assert live.execution is not None
            await live.execution.funds()
            # A wake with nothing new (the same token) changes nothing.
            renewal.wake()
            await asyncio.sleep(0.2)
            assert renewal.renewals == 1 and live.session_valid


@pytest.mark.parametrize("name", BROKERS)
async def test_a_token_handed_over_is_kept_with_the_brokers_expiry(name: str) -> None:
    """``TokenHandover`` (the desktop's login handed to its order node): the session keeps
    the token as its own login would, the running broker resumes with it."""
    from services.brokers.ports import TokenHandover

    with fake_broker(name) as (fake, section, secrets):
        async with running(name, section, secrets, poll=600.0) as (live, _renewal):
            await expire(fake, live)
            session = live.session
            assert isinstance(session, TokenHandover)
            fake.access_tokens.add("handed-token")
            login_at = datetime.now(IST)
            token = await asyncio.to_thread(session.adopt, "handed-token", login_at)
            assert token.expires_at > login_at and token.expires_at - login_at < timedelta(1)
            assert live.session is not None and live.session.current(login_at) == token
            live.use_token(token.access_token, token.expires_at)
            assert live.execution is not None
            await live.execution.funds()
