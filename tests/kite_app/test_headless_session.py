"""Headless on Kite: the 06:00 token expiry shows on /readyz and a new login resumes it."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from app.headless import ServerOptions, parse_listen, serve
from services.brokers.kite.session import CREDENTIALS, SESSION
from services.clock import IST
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import MemorySecrets, kite_settings


def stored(token: str) -> dict[str, str]:
    expires = datetime.now(IST) + timedelta(hours=12)
    return {"access_token": token, "expires_at": expires.isoformat()}


@contextlib.asynccontextmanager
async def headless_on(
    fake: FakeKite, secrets: MemorySecrets, *, poll: float
) -> AsyncIterator[str]:
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(
        serve(
            kite_settings(fake),
            parse_listen("127.0.0.1:0"),
            announce=lambda line: announced.set_result(line.removeprefix("listening on ")),
            stop=stop,
            options=ServerOptions(secrets=secrets, session_poll=poll),
        )
    )
    try:
        yield await asyncio.wait_for(asyncio.shield(announced), 20)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0


async def readyz(http: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with http.get(base + "/readyz") as r:
        return r.status, await r.json()


async def wait_for_session(
    http: aiohttp.ClientSession, base: str, state: str, within: float = 10.0
) -> tuple[int, dict[str, Any]]:
    deadline = asyncio.get_running_loop().time() + within
    while True:
        status, body = await readyz(http, base)
        if body["components"]["broker_session"]["state"] == state:
            return status, body
        assert asyncio.get_running_loop().time() < deadline, body
        await asyncio.sleep(0.1)


def secrets_for(fake: FakeKite) -> MemorySecrets:
    return MemorySecrets(
        {
            CREDENTIALS: {"api_key": fake.api_key, "api_secret": fake.api_secret},
            SESSION: stored("fakeaccesstoken"),
        }
    )


async def expire(fake: FakeKite, http: aiohttp.ClientSession, base: str) -> None:
    """Kite drops the token at 06:00: the ticker's reconnect is refused with 403."""
    status, body = await wait_for_session(http, base, "valid")
    assert body["components"]["broker_session"]["required"] is True
    fake.expire_session()
    fake.drop_sockets()
    status, body = await wait_for_session(http, base, "expired")
    assert status == 503 and body["status"] == "not ready"
    assert body["components"]["broker_session"]["ready"] is False


async def test_expired_session_is_not_ready_and_a_saved_token_is_polled(fake: FakeKite) -> None:
    secrets = secrets_for(fake)
    async with headless_on(fake, secrets, poll=0.2) as base, aiohttp.ClientSession() as http:
        await expire(fake, http, base)
        await asyncio.sleep(0.5)  # polling finds only the refused token: still expired
        assert (await readyz(http, base))[1]["components"]["broker_session"]["state"] == "expired"

        fake.access_tokens.add("nexttoken")  # `dalal login kite` in another process
        secrets.set(SESSION, stored("nexttoken"))
        await wait_for_session(http, base, "valid", within=15)
        deadline = asyncio.get_running_loop().time() + 15
        while (await readyz(http, base))[0] != 200:  # the feed reconnects with the new token
            assert asyncio.get_running_loop().time() < deadline, await readyz(http, base)
            await asyncio.to_thread(fake.push_ticks)  # in market hours the feed must tick
            await asyncio.sleep(0.2)


async def test_sighup_takes_a_new_token_at_once(fake: FakeKite) -> None:
    secrets = secrets_for(fake)
    async with headless_on(fake, secrets, poll=600) as base, aiohttp.ClientSession() as http:
        await expire(fake, http, base)
        fake.access_tokens.add("nexttoken")
        secrets.set(SESSION, stored("nexttoken"))
        await asyncio.sleep(0.3)
        assert (await readyz(http, base))[1]["components"]["broker_session"]["state"] == "expired"
        os.kill(os.getpid(), signal.SIGHUP)
        await wait_for_session(http, base, "valid", within=15)
