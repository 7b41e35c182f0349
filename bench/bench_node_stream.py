"""``/v1/stream`` fanning out to 5 desktops at 1,000 events a second.

A node process serves the real control application (key check, the stream handler, the event
journal) and appends 1,000 order events a second to its journal; five WebSocket clients in
this process read them. Latency is from the event's time stamp (taken when the journal
appends it) to its arrival at a client, on the same host's clock. Every client must see every
sequence number once, in order. Target: p99 <= 20 ms.

    .venv/bin/python bench/bench_node_stream.py [--seconds 5] [--clients 5] [--rate 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import sqlite3
import statistics
import sys
from datetime import UTC, datetime
from decimal import Decimal
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

TARGET_P99_MS = 20.0


def node_process(out: Queue[tuple[str, str]], stop: Event, rate: float) -> None:
    from aiohttp import web

    from app.http.auth import Guard
    from app.http.context import ApiContext, NodeControls
    from app.http.routes import ProbeContext
    from app.http.server import build_control_app
    from services.apikeys import ApiKeyStore, KeyRateLimiter, Scope
    from services.bus import EventBus
    from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
    from services.health import Readiness
    from services.metrics import Metrics
    from services.node.events import EventJournal

    async def main() -> None:
        store = ApiKeyStore(sqlite3.connect(":memory:", check_same_thread=False))
        token = str(store.create("desktop", [Scope.READ]).token)
        metrics = Metrics(version="bench")
        journal = EventJournal(EventBus(), lambda: {"state": "ACTIVE", "reason": ""},
                               now=lambda: datetime.now(UTC))  # fmt: skip
        none: Any = None
        api = ApiContext(trading=none, metrics=metrics, killswitch=none,
                         node=NodeControls(events=journal))  # fmt: skip
        guard = Guard(store, metrics, KeyRateLimiter(1e6, 1e6))
        app = build_control_app(ProbeContext(metrics, Readiness(), "bench"), api, guard)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        out.put((f"http://127.0.0.1:{runner.addresses[0][1]}", token))
        request = OrderRequest("NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC,
                               price=Decimal("1400.00"), tag="bench")  # fmt: skip
        loop = asyncio.get_running_loop()
        start = loop.time()
        n = 0
        while not stop.is_set():
            n += 1
            now = datetime.now(UTC)
            journal.order(Order(f"o{n}", request, OrderStatus.OPEN, now, now))
            await asyncio.sleep(max(0.0, start + n / rate - loop.time()))
        await runner.cleanup()

    asyncio.run(main())


async def reader(base: str, token: str, seconds: float, out: list[float]) -> tuple[int, int]:
    import aiohttp

    from services.node.wire import STREAM_PROTOCOL

    seen = 0
    last: int | None = None
    gaps = 0
    async with aiohttp.ClientSession() as http, http.ws_connect(
        base + "/v1/stream", headers={"Authorization": f"Bearer {token}"},
        protocols=(STREAM_PROTOCOL,),
    ) as ws:  # fmt: skip
        loop = asyncio.get_running_loop()
        until = loop.time() + seconds  # from the connection, not from the start of the run
        while loop.time() < until:
            msg = await ws.receive()
            arrived = datetime.now(UTC)
            data = json.loads(msg.data)
            if data["type"] != "event":
                last = data.get("seq") if data["type"] == "snapshot" else last
                continue
            if last is not None and data["seq"] != last + 1:
                gaps += 1
            last = data["seq"]
            seen += 1
            out.append((arrived - datetime.fromisoformat(data["time"])).total_seconds())
    return seen, gaps


async def run(base: str, token: str, clients: int, seconds: float) -> tuple[list[float], int, int]:
    samples: list[float] = []
    results = await asyncio.gather(*(reader(base, token, seconds, samples)
                                     for _ in range(clients)))  # fmt: skip
    return samples, sum(r[0] for r in results), sum(r[1] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rate", type=float, default=1000.0)
    args = parser.parse_args()
    context = multiprocessing.get_context("spawn")
    out: Queue[tuple[str, str]] = context.Queue()
    stop = context.Event()
    proc = context.Process(target=node_process, args=(out, stop, args.rate), name="node")
    proc.start()
    try:
        base, token = out.get(timeout=90)
        samples, seen, gaps = asyncio.run(run(base, token, args.clients, args.seconds))
    finally:
        stop.set()
        proc.join(30)
    ms = sorted(s * 1000 for s in samples)
    p50, p99 = statistics.median(ms), ms[int(0.99 * (len(ms) - 1))]
    print(f"{args.clients} clients, {args.rate:g} events/s for {args.seconds:g} s: {seen} "
          f"deliveries, {gaps} sequence gaps")  # fmt: skip
    print(f"event to client ms: p50 {p50:.2f}  p99 {p99:.2f}  max {ms[-1]:.2f}")
    met = p99 <= TARGET_P99_MS and gaps == 0
    print(f"p99 {p99:.2f} ms   target <= {TARGET_P99_MS:.0f} ms   {'MET' if met else 'NOT MET'}")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
