"""Run the real headless server on a loopback port inside the test's event loop."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.headless import ServerOptions, parse_listen, serve
from app.settings import Settings
from services.apikeys import ApiKeyStore, Scope

EXPECTED_KEY_PREFIX = "dk_"


@dataclass
class Running:
    base: str
    store: ApiKeyStore
    audit: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def key(self, *scopes: Scope, name: str = "test") -> str:
        return str(self.store.create(name, scopes or (Scope.READ,)).token)

    def events(self, kind: str) -> list[dict[str, Any]]:
        return [d for k, _, d in self.audit if k == kind]


@contextlib.asynccontextmanager
async def running_server(
    options: ServerOptions | None = None,
    *,
    listen: str = "127.0.0.1:0",
    store: ApiKeyStore | None = None,
    capture_audit: bool = True,
    settings: Settings | None = None,
) -> AsyncIterator[Running]:
    """``capture_audit=False`` keeps the server's own audit path (the profile's log)."""
    if store is None:
        store = ApiKeyStore(
            sqlite3.connect(":memory:", check_same_thread=False), cache_seconds=0.0
        )  # the server verifies keys on its own thread
    events: list[tuple[str, str, dict[str, Any]]] = []

    def audit(kind: str, actor: str, details: Mapping[str, Any]) -> None:
        events.append((kind, actor, dict(details)))

    opts = replace(options or ServerOptions(), keys=store)
    if capture_audit:
        opts = replace(opts, audit=audit)
    announced: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    def announce(line: str) -> None:
        announced.set_result(line.removeprefix("listening on "))

    task = asyncio.create_task(
        serve(
            settings or Settings(ticks_per_second=50),
            parse_listen(listen),
            version="test",
            announce=announce,
            stop=stop,
            options=opts,
        )
    )
    try:
        base = await asyncio.wait_for(asyncio.shield(announced), 20)
        yield Running(base, store, events)
    finally:
        stop.set()
        assert await asyncio.wait_for(task, 20) == 0
