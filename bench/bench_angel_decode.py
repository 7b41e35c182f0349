"""SmartWebSocketV2 decode + publish rate on one core (target: at least 50,000 ticks/s).

Angel sends one packet per WebSocket message, so the path measured is the feed's own
``AngelFeed.handle_packet``: decode one packet into a ``Tick`` (exact ``Decimal`` rupees,
IST time, five levels of depth for SnapQuote) and queue it for the loop, plus the loop side
that publishes each queued burst to the event bus with a chart-like coalescing subscriber
draining once per burst. Packets are SnapQuote (379 bytes) for 200 instruments whose prices
walk randomly; LTP and Quote figures are printed too. Exit status 1 when SnapQuote misses.

    .venv/bin/python bench/bench_angel_decode.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import time
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.brokers.angelone.execution import AngelTokens
from services.brokers.angelone.feed import AngelFeed
from services.brokers.angelone.instruments import AngelInstruments, AngelMaster, parse_master
from services.bus import TICKS, EventBus
from tests.fakes.angelone.packets import LTP, QUOTE, SNAP_QUOTE, encode, sample_quote

TARGET = 50_000
INSTRUMENTS = 200
BURST = 50  # packets that arrive while one flush is queued on the loop
MODES = {"ltp": LTP, "quote": QUOTE, "snap_quote": SNAP_QUOTE}


def make_packets(mode: int, count: int, rng: random.Random) -> list[bytes]:
    prices = {i: Decimal(rng.randrange(10_000, 500_000, 5)) / 100 for i in range(INSTRUMENTS)}
    ms = int(time.time() * 1000)
    packets = []
    for n in range(count):
        i = rng.randrange(INSTRUMENTS)
        prices[i] = max(Decimal("5"), prices[i] + rng.choice((-10, -5, 0, 5, 10)) / Decimal(100))
        quote = sample_quote(1, str(10_000 + i), str(prices[i]), ms + n // 20)
        packets.append(encode(quote, mode))
    return packets


def make_feed(bus: EventBus) -> AngelFeed:
    rows = [
        {"token": str(10_000 + i), "symbol": f"SYM{i}-EQ", "name": f"SYM{i}", "expiry": "",
         "strike": "-1.000000", "lotsize": "1", "instrumenttype": "", "exch_seg": "NSE",
         "tick_size": "5.000000"}
        for i in range(INSTRUMENTS)
    ]  # fmt: skip
    holder = AngelInstruments(AngelMaster(None, parse_master(rows)))
    # A real (not running) loop: each burst costs the feed one call_soon_threadsafe, as on
    # the socket thread; the bench then runs what the loop would run.
    loop = asyncio.new_event_loop()
    feed = AngelFeed("key", AngelTokens("jwt", "refresh", "feed", "C1"), holder, bus, loop=loop)
    # Register every instrument with the decoder as a subscription would (no socket opened).
    feed.decoder.add({(1, str(10_000 + i)): f"NSE:SYM{i}" for i in range(INSTRUMENTS)})
    return feed


def run(mode: int, seconds: float) -> float:
    rng = random.Random(7)
    packets = make_packets(mode, 20_000, rng)
    bus = EventBus()
    sub = bus.subscribe(TICKS, "chart")
    feed = make_feed(bus)
    handle = feed.handle_packet
    publish = feed._publish  # what the loop runs for each queued burst
    ticks = 0
    start = time.perf_counter()
    deadline = start + seconds
    i = 0
    n = len(packets)
    while time.perf_counter() < deadline:
        for _ in range(BURST):
            handle(packets[i])
            i = (i + 1) % n
        publish()
        ticks += BURST
        sub.drain()
    elapsed = time.perf_counter() - start
    assert feed.decoder.unknown == 0 and feed.decode_errors == 0
    return ticks / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    results: dict[str, float] = {}
    for name, mode in MODES.items():
        rates = [run(mode, args.seconds) for _ in range(args.rounds)]
        results[name] = statistics.median(rates)
        print(f"{name:>10}: {results[name]:>10,.0f} ticks/s (median of {args.rounds})")
    ok = results["snap_quote"] >= TARGET
    print(
        f"SnapQuote decode + publish: {results['snap_quote']:,.0f} ticks/s "
        f"(target >= {TARGET:,}) {'OK' if ok else 'MISS'}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
