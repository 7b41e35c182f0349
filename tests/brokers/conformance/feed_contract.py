"""The ``MarketDataFeed`` contract as one scenario that reports what it measured.

It runs wherever the harness says (in-process, or in a subprocess for an SDK that cannot be
restarted within one), so it returns plain JSON and ``test_feed.py`` asserts on it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.brokers.errors import CapacityExceeded, InstrumentUnknown
from services.brokers.ports import FeedMode
from services.bus import CONNECTION, TICKS
from services.domain import ConnectionStatus, Tick
from tests.brokers.conformance.harness import FeedControl


async def _until(check: Callable[[], bool], within: float) -> float | None:
    """Seconds until ``check`` held, or None if it never did within ``within``."""
    start = time.monotonic()
    while time.monotonic() - start < within:
        if check():
            return time.monotonic() - start
        await asyncio.sleep(0.02)
    return None


async def feed_contract(control: FeedControl) -> dict[str, Any]:
    result: dict[str, Any] = {}
    bus = control.bus
    bus.bind_loop(asyncio.get_running_loop())
    ticks_sub = bus.subscribe(TICKS, "contract-ticks")
    states_sub = bus.subscribe(CONNECTION, "contract-states")
    seen: dict[str, Tick] = {}
    states: list[tuple[float, str]] = []

    async def pump() -> None:
        while True:
            for tick in await ticks_sub.next_batch():
                seen[tick.key] = tick

    async def pump_states() -> None:
        while True:
            for state in await states_sub.next_batch():
                states.append((time.monotonic(), state.status.value))

    tasks = [asyncio.ensure_future(pump()), asyncio.ensure_future(pump_states())]
    feed = control.feed()
    wanted = control.keys()
    try:
        limit = feed.capacity.limit(FeedMode.QUOTE)
        too_many = [f"NSE:CAPACITY{i}" for i in range(limit + 1)]
        try:
            feed.subscribe(too_many, FeedMode.QUOTE)
            result["capacity_error"] = None
        except CapacityExceeded as exc:
            result["capacity_error"] = str(exc)
        result["capacity_limit"] = limit
        try:
            feed.subscribe([control.unknown_key()], FeedMode.LTP)
            result["unknown_error"] = None
        except InstrumentUnknown as exc:
            result["unknown_error"] = str(exc)
        result["subscribed_after_errors"] = sorted(feed.subscriptions())

        for key, mode in wanted.items():
            feed.subscribe([key], mode)
        feed.start()
        result["subscribed_in"] = await _until(
            lambda: control.server_subscriptions() == wanted, 15.0
        )
        control.push_ticks()
        result["first_ticks_in"] = await _until(lambda: set(wanted) <= set(seen), 5.0)
        result["ticks"] = {
            k: {
                "decimal": isinstance(t.last_price, Decimal),
                "aware": t.ts.tzinfo is not None,
                "price": str(t.last_price),
            }
            for k, t in seen.items()
        }

        # Reconnect: the server cuts the socket; measure from the new connection to the
        # full resubscription.
        connects = feed.status().connects
        control.drop_sockets()
        reconnected = await _until(lambda: feed.status().connects > connects, 15.0)
        result["reconnected_in"] = reconnected
        resub = await _until(lambda: control.server_subscriptions() == wanted, 5.0)
        result["resubscribed_after_connect"] = resub
        seen.clear()
        control.push_ticks()
        result["ticks_after_reconnect_in"] = await _until(lambda: set(wanted) <= set(seen), 5.0)

        # Stale: the server goes silent (no ticks, no heartbeats) without closing.
        control.silence(True)
        silent_from = time.monotonic()
        result["stale_detected_in"] = await _until(
            lambda: feed.status().stale
            or any(
                t > silent_from and s == ConnectionStatus.DISCONNECTED.value for t, s in states
            ),
            8.0,
        )
        control.silence(False)
        connects = feed.status().connects
        result["back_after_stale_in"] = await _until(
            lambda: feed.status().connects > connects and feed.status().connected, 15.0
        )
        first = next(iter(wanted))
        feed.unsubscribe([first])
        feed.unsubscribe(["NSE:NEVERSUBSCRIBED"])
        result["after_unsubscribe"] = sorted(feed.subscriptions())
        result["expected_after_unsubscribe"] = sorted(k for k in wanted if k != first)
        status = feed.status()
        result["status"] = {"connected": status.connected, "subscribed": status.subscribed}
    finally:
        feed.stop()
        for task in tasks:
            task.cancel()
    return result
