"""A stopped feed leaves nothing running: every socket closed, every thread it started ended.

A thread that outlives ``stopped()`` keeps a socket to the broker open and publishes into a
bus nobody reads; in one process (the desktop, the test suite) the next window then shares
the machine with it. Kite is not here: its SDK runs Twisted's reactor, a process-wide thread
that cannot be restarted once stopped, so its tests run in a process of their own.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.brokers.conformance.conftest import load_harness
from tests.brokers.conformance.harness import FeedControl, Harness
from tests.threads import adapter_threads

STOPPABLE = ("upstox", "breeze", "angelone")


@pytest.fixture(params=STOPPABLE)
def harness(request: pytest.FixtureRequest) -> Iterator[Harness]:
    h = load_harness(str(request.param))
    h.start()
    try:
        yield h
    finally:
        h.stop()


async def _until(check: Callable[[], bool], within: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while loop.time() < deadline:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


async def _connect_drop_stop(control: FeedControl) -> dict[str, Any]:
    before = set(threading.enumerate())
    feed = control.feed()
    wanted = control.keys()
    for key, mode in wanted.items():
        feed.subscribe([key], mode)
    feed.start()
    assert await _until(lambda: control.server_subscriptions() == wanted, 15.0)
    running = adapter_threads(before)
    connects = feed.status().connects
    control.drop_sockets()  # a reconnect starts a new socket (and, for SDK sockets, threads)
    assert await _until(lambda: feed.status().connects > connects, 15.0)
    assert await _until(lambda: control.server_subscriptions() == wanted, 5.0)
    await feed.stopped()  # type: ignore[attr-defined]
    assert not feed.status().connected
    return {"running": running, "left": adapter_threads(before)}


@pytest.mark.slow
def test_no_feed_thread_survives_stopped(harness: Harness) -> None:
    seen = harness.run_feed(_connect_drop_stop)
    if harness.name == "angelone":  # SmartWebSocketV2 runs on threads: they were there
        assert seen["running"], "expected the Angel feed's socket threads while connected"
    assert seen["left"] == []
