"""A server running without its profile database has no key store: that is our fault, so a
presented key gets 503 with the reason, never 401, and never counts toward the address block."""

from __future__ import annotations

import asyncio

import aiohttp

from app.headless import ServerOptions, parse_listen, serve
from app.settings import Settings
from services.apikeys.lockout import MAX_FAILURES


async def test_no_key_store_is_503_and_never_blocks_the_address() -> None:
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()
    task = asyncio.create_task(serve(
        Settings(ticks_per_second=50), parse_listen("127.0.0.1:0"), version="test",
        announce=lambda line: announced.set_result(line.removeprefix("listening on ")),
        stop=stop, options=ServerOptions(),
    ))  # fmt: skip
    try:
        base = await asyncio.wait_for(asyncio.shield(announced), 20)
        headers = {"Authorization": "Bearer dk_0123456789abcdef_a-valid-looking-secret"}
        async with aiohttp.ClientSession() as http:
            for _ in range(MAX_FAILURES * 2):
                async with http.get(base + "/v1/orders", headers=headers) as r:
                    assert r.status == 503, await r.text()
                    assert "no API key store" in (await r.json())["detail"]
            async with http.get(base + "/readyz") as r:
                component = (await r.json())["components"]["api_keys"]
        assert component["ready"] is False and "not open" in component["state"]
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
