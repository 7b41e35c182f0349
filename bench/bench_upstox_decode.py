"""Upstox Market Data Feed V3 decode + publish rate on one core (target: 50,000 ticks/s).

Protobuf ``FeedResponse`` frames of 50 feeds (built with the SDK's ``MarketDataFeedV3_pb2``)
for 200 instruments whose prices walk on the tick grid, decoded by ``FeedDecoder`` and
published to the event bus with a chart-like coalescing subscriber that drains once per
frame. Full mode carries five levels of depth a side and the day's OHLC; ltpc figures are
printed too. Exit status 1 when the full-mode rate misses the target.

    .venv/bin/python bench/bench_upstox_decode.py [--seconds 2]

The rate is ticks per second of *CPU time* (``time.process_time``), so a loaded machine
does not skew it; run it on a quiet one anyway for the cache's sake.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.brokers.upstox.feed_decode import FeedDecoder
from services.bus import TICKS, EventBus

TARGET = 50_000
INSTRUMENTS = 200
PER_FRAME = 50


def make_frames(mode: str, count: int, rng: random.Random) -> tuple[list[bytes], dict[str, str]]:
    from upstox_client.feeder.proto import MarketDataFeedV3_pb2 as pb

    keys = [f"NSE_EQ|INE{i:06d}A01" for i in range(INSTRUMENTS)]
    paise = {k: rng.randrange(10_000, 500_000, 5) for k in keys}
    now_ms = int(time.time() * 1000)
    frames = []
    for f in range(count):
        response = pb.FeedResponse()
        response.type = pb.live_feed
        response.currentTs = now_ms + f
        for key in rng.sample(keys, PER_FRAME):
            paise[key] = max(500, paise[key] + rng.choice((-10, -5, 0, 5, 10)))
            ltp = paise[key] / 100
            feed = response.feeds[key]
            if mode == "ltpc":
                target = feed.ltpc
            else:
                market = feed.fullFeed.marketFF
                target = market.ltpc
                for n in range(5):
                    quote = market.marketLevel.bidAskQuote.add()
                    quote.bidQ, quote.bidP = rng.randrange(1, 5000), ltp - 0.05 * (n + 1)
                    quote.askQ, quote.askP = rng.randrange(1, 5000), ltp + 0.05 * (n + 1)
                day = market.marketOHLC.ohlc.add()
                day.interval, day.open, day.high = "1d", ltp - 1, ltp + 2
                day.low, day.close = ltp - 3, ltp
                day.vol = 1_000_000 + f
                market.vtt = 1_000_000 + f
                market.atp = ltp
            target.ltp = ltp
            target.ltt = now_ms + f // 20
            target.ltq = rng.randrange(1, 500)
            target.cp = ltp - 0.5
        frames.append(response.SerializeToString())
    return frames, {k: f"NSE:SYM{i}" for i, k in enumerate(keys)}


def run(mode: str, seconds: float) -> float:
    rng = random.Random(7)
    frames, keys = make_frames(mode, 400, rng)
    decoder = FeedDecoder(keys)
    bus = EventBus()
    sub = bus.subscribe(TICKS, "chart")
    ticks = 0
    # CPU time of this (single-threaded) process: the figure is the cost of decoding on one
    # core, not how much of a core a busy machine happened to leave us.
    start = time.process_time()
    deadline = start + seconds
    while time.process_time() < deadline:
        for frame in frames:
            batch = decoder.decode(frame)
            bus.publish_many(TICKS, batch)
            sub.drain()
            ticks += len(batch)
    return ticks / (time.process_time() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    full = run("full", args.seconds)
    ltpc = run("ltpc", args.seconds / 2)
    print(
        f"upstox feed v3 decode+publish, full mode (depth):  {full:>10,.0f} ticks/s   "
        f"target >= {TARGET:,}  {'OK' if full >= TARGET else 'MISS'}"
    )
    print(f"upstox feed v3 decode+publish, ltpc mode:          {ltpc:>10,.0f} ticks/s")
    return 0 if full >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
