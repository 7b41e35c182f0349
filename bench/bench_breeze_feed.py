"""Breeze stream parse + publish rate on one core (target: at least 20,000 ticks/s), and how
many instruments one Socket.IO connection to the fake carries.

1. Rate: the raw positional lists Breeze emits (21-item cash quotes, 23-item F&O quotes and
   depth lists, in the proportions 6:3:1) for 200 instruments whose prices walk, handed to
   ``BreezeFeed``'s own ``stock`` handler (decode into exact ``Tick``s, publish on the bus)
   with a chart-like coalescing subscriber drained every 50 ticks.
2. Capacity: one python-socketio connection to the fake joins N instruments at once and
   must get one tick for every one of them from a single push; N doubles from 100 until a
   tick goes missing or 3,200 is reached. The feed's declared cap stays at
   ``MAX_INSTRUMENTS_PER_CONNECTION`` whatever the fake holds: the fake is not ICICI.

Exit status 1 when the rate misses the target.

    .venv/bin/python bench/bench_breeze_feed.py [--seconds 2] [--no-capacity]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.brokers.breeze.config import MAX_INSTRUMENTS_PER_CONNECTION
from services.brokers.breeze.feed import BreezeFeed
from services.brokers.breeze.instruments import Masters, parse_master
from services.brokers.ports import FeedMode
from services.bus import TICKS, EventBus
from services.clock import ManualClock, SystemClock
from tests.fakes.breeze.master import Scrip, build_master_zip, default_scrips

TARGET = 20_000
INSTRUMENTS = 200
DAY = date(2026, 11, 25)


def scrips(count: int) -> list[Scrip]:
    base = default_scrips(DAY)
    extra = [
        Scrip("NSE", str(10_000 + i), f"SYM{i:04d}", f"SYM{i}", f"COMPANY {i}", "0.05", 1, "500.00")
        for i in range(count)
    ]
    return base + extra


def payloads(master: Any, count: int, rng: random.Random) -> list[list[Any]]:
    contracts = [c for c in master.by_key.values() if c.instrument.tradable][:INSTRUMENTS]
    prices = {c.key: 500.0 for c in contracts}
    epoch = int(time.time())
    out: list[list[Any]] = []
    for n in range(count):
        c = rng.choice(contracts)
        prices[c.key] = round(max(1.0, prices[c.key] + rng.choice((-0.05, 0.0, 0.05))), 2)
        ltp = prices[c.key]
        kind = n % 10
        if kind == 9:
            levels = [[ltp - 0.05 * i, 100, 2, "N", ltp + 0.05 * i, 90, 3, "N"] for i in range(5)]
            out.append([c.depth_token, epoch, levels])
            continue
        head = [c.stream_token, 499.0, ltp, ltp + 2, ltp - 2, 0.4, ltp - 0.05, 500, ltp + 0.05]
        head += [450, 10, ltp]
        tail = [100_000 + n, 4_000, 3_800, "323.61C", "", 400.0, 600.0, epoch, 498.5]
        out.append(head + ([5_000_000, 1_250] if kind >= 6 else []) + tail)
    return out


def rate(seconds: float) -> float:
    master = parse_master(build_master_zip(scrips(INSTRUMENTS)), DAY)
    masters = Masters(None, ManualClock.__new__(ManualClock))  # type: ignore[arg-type]
    masters.set(master)
    bus = EventBus()
    feed = BreezeFeed(bus, masters, lambda: None, clock=SystemClock())
    feed.capacity = type(feed.capacity)(per_connection=10_000)
    keys = [c.key for c in master.by_key.values() if c.instrument.tradable][:INSTRUMENTS]
    feed.subscribe(keys, FeedMode.FULL)
    sub = bus.subscribe(TICKS, "chart")
    lists = payloads(master, 20_000, random.Random(7))
    handle = feed._on_stock  # the handler the Socket.IO client calls for every ``stock``
    ticks = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for i, payload in enumerate(lists):
            handle(payload)
            if i % 50 == 49:
                sub.drain()
        ticks += len(lists)
    return ticks / (time.perf_counter() - start)


async def holds(count: int) -> bool:
    """Can one connection to the fake join ``count`` instruments and tick them all?"""
    import socketio  # type: ignore[import-untyped]

    from tests.fakes.breeze.server import FakeBreeze

    with FakeBreeze(scrips=scrips(count), today=DAY) as fake:
        session = fake.issue_api_session()
        fake.api_sessions.discard(session)
        key = "benchsessionkey"
        fake.session_keys.add(key)
        client = socketio.AsyncClient(reconnection=False)
        seen: set[str] = set()
        client.on("stock", lambda data: seen.add(data[0]))
        await client.connect(
            fake.base_url, auth={"user": fake.user_id, "token": key}, transports=["websocket"]
        )
        tokens = [f"4.1!{10_000 + i}" for i in range(count)]
        await client.emit("join", tokens)
        for _ in range(100):
            if len(fake.subscribed_tokens()) == count:
                break
            await asyncio.sleep(0.05)
        await asyncio.to_thread(fake.push_ticks)
        for _ in range(200):
            if len(seen) == count:
                break
            await asyncio.sleep(0.05)
        await client.disconnect()
        return len(seen) == count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--no-capacity", action="store_true")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    measured = rate(args.seconds)
    print(
        f"breeze stream parse+publish (cash, F&O, depth):  {measured:>10,.0f} ticks/s   "
        f"target >= {TARGET:,}  {'OK' if measured >= TARGET else 'MISS'}"
    )
    if not args.no_capacity:
        held = 0
        n = 100
        while n <= 3_200 and asyncio.run(holds(n)):
            held, n = n, n * 2
        print(
            f"one connection to the fake held {held:,} instruments (every one ticked); "
            f"declared cap {MAX_INSTRUMENTS_PER_CONNECTION} (ICICI publishes none)"
        )
    return 0 if measured >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
