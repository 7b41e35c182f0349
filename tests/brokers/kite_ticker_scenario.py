"""The KiteTicker scenario, run in its own process by test_kite_ticker_stream.py.

Twisted's reactor cannot be restarted, so the real SDK's ticker gets a fresh process. The
script drives KiteStream against the fake Kite's WebSocket and prints one JSON line with what
it observed; the test asserts on it.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from services.brokers.kite.config import KiteEndpoints
from services.brokers.kite.execution import KiteBroker
from services.brokers.kite.feed import KiteStream
from services.bus import CONNECTION, ORDERS, TICKS, EventBus
from services.domain import OrderRequest, OrderType, Product, Side, Tick
from tests.fakes.kite_server import FakeKite

INFY, NIFTY, USDINR = 408065, 256265, 1912 * 256 + 3
EXPECTED = {INFY: "full", NIFTY: "ltp", USDINR: "quote"}


async def wait_until(check: Callable[[], bool], within: float = 10.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if check():
            return True
        await asyncio.sleep(0.05)
    return False


async def collect_ticks(sub: Any, keys: set[str], within: float = 5.0) -> dict[str, Tick]:
    seen: dict[str, Tick] = {}
    deadline = time.monotonic() + within
    while time.monotonic() < deadline and not keys <= seen.keys():
        try:
            batch = await asyncio.wait_for(sub.next_batch(), 0.2)
        except TimeoutError:
            continue
        seen.update({t.key: t for t in batch})
    return seen


def describe(ticks: dict[str, Tick]) -> dict[str, Any]:
    return {
        key: {
            "last_price": str(t.last_price),
            "close": str(t.close),
            "utcoffset": t.ts.utcoffset().total_seconds() if t.ts.utcoffset() else None,
            "bids": len(t.depth.bids) if t.depth else 0,
        }
        for key, t in ticks.items()
    }


async def scenario() -> dict[str, Any]:
    result: dict[str, Any] = {}
    with FakeKite() as fake:
        loop = asyncio.get_running_loop()
        bus = EventBus()
        bus.bind_loop(loop)
        ticks = bus.subscribe(TICKS, "ticks")
        orders = bus.subscribe(ORDERS, "orders")
        states = bus.subscribe(CONNECTION, "connection")
        seen_states: list[str] = []

        async def record_states() -> None:
            # CONNECTION coalesces per component: read it continuously to see each change.
            while True:
                seen_states.extend(s.status.value for s in await states.next_batch())

        recorder = asyncio.ensure_future(record_states())
        keys = {i.token: i.key for i in fake.instruments.values()}
        stream = KiteStream(
            fake.api_key,
            "fakeaccesstoken",
            bus,
            keys,
            root=f"ws://127.0.0.1:{fake.port}/ws",
            dead_after=1.5,
            loop=loop,
        )
        for token, mode in EXPECTED.items():
            stream.subscribe([token], mode)
        stream.start()
        result["subscribed"] = await wait_until(lambda: fake.subscriptions() == [EXPECTED])
        fake.push_ticks()
        wanted = {"NSE:INFY", "NSE:NIFTY 50", "CDS:USDINRFUT"}
        result["first"] = describe(await collect_ticks(ticks, wanted))

        broker = KiteBroker(
            fake.api_key, "fakeaccesstoken", endpoints=KiteEndpoints(root=fake.base_url)
        )
        placed = await broker.place_order(
            OrderRequest(
                "NSE:INFY", Side.BUY, 3, OrderType.LIMIT, Product.CNC, price=Decimal("1500")
            ),
            variety="regular",
        )
        fake.fill(placed.order_id, 1, "1500")
        updates: list[str] = []
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and "PARTIALLY_FILLED" not in updates:
            try:
                batch = await asyncio.wait_for(orders.next_batch(), 0.2)
            except TimeoutError:
                continue
            updates += [o.status.value for o in batch if o.order_id == placed.order_id]
        result["order_updates"] = updates

        fake.drop_sockets()
        result["reconnected"] = await wait_until(
            lambda: stream.connects >= 2 and fake.subscriptions() == [EXPECTED]
        )
        result["resubscribed"] = fake.subscriptions()
        fake.set_price("NSE:INFY", "1600.5")
        fake.push_ticks()
        result["after_reconnect"] = describe(await collect_ticks(ticks, wanted))

        fake.heartbeats = False
        dead_detected = False
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and stream.connects < 3:
            if not stream.check_alive():
                dead_detected = True
            await asyncio.sleep(0.2)
        result["dead_feed_detected"] = dead_detected
        result["connects"] = stream.connects
        fake.heartbeats = True
        recorder.cancel()
        result["states"] = seen_states
        result["decode_errors"] = stream.decode_errors
        stream.stop()
        await asyncio.sleep(0.2)
        result["subscriptions_keys"] = {str(k): v for k, v in stream.subscriptions().items()}
    return result


def main() -> int:
    result = asyncio.run(scenario())
    print(json.dumps(result))
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
