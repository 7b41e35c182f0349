"""KiteTicker decode + publish rate on one core (target: at least 50,000 ticks/s).

Frames of 50 full-mode packets (184 bytes, five levels of depth a side) for 200 instruments
whose prices walk randomly, decoded by ``TickDecoder`` and published to the event bus with a
chart-like coalescing subscriber that drains once per frame. Quote-mode figures are printed
too. Exit status 1 when the full-mode rate misses the target.

    .venv/bin/python bench/bench_kite_decode.py [--seconds 2]
"""

from __future__ import annotations

import argparse
import os
import random
import struct
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.brokers.kite.ticker_decode import TickDecoder, build_frame
from services.bus import TICKS, EventBus

TARGET = 50_000
INSTRUMENTS = 200
PER_FRAME = 50


def make_frames(mode: str, count: int, rng: random.Random) -> tuple[list[bytes], dict[int, str]]:
    tokens = [(1000 + i) * 256 + 1 for i in range(INSTRUMENTS)]
    prices = {t: rng.randrange(10_000, 500_000, 5) for t in tokens}
    epoch = int(time.time())
    frames = []
    for f in range(count):
        packets = []
        for _ in range(PER_FRAME):
            t = rng.choice(tokens)
            prices[t] = max(500, prices[t] + rng.choice((-10, -5, 0, 5, 10)))
            ltp = prices[t]
            head = struct.pack(
                ">11I",
                t,
                ltp,
                rng.randrange(1, 500),
                ltp,
                1_000_000 + f,
                50_000,
                60_000,
                ltp - 100,
                ltp + 200,
                ltp - 300,
                ltp - 50,
            )
            if mode == "quote":
                packets.append(head)
                continue
            head += struct.pack(">5I", epoch + f // 20, 0, 0, 0, epoch + f // 20)
            depth = b"".join(
                struct.pack(">IIH2x", rng.randrange(1, 5000), ltp - 5 * (i + 1), i + 1)
                for i in range(5)
            ) + b"".join(
                struct.pack(">IIH2x", rng.randrange(1, 5000), ltp + 5 * (i + 1), i + 1)
                for i in range(5)
            )
            packets.append(head + depth)
        frames.append(build_frame(packets))
    return frames, {t: f"NSE:SYM{i}" for i, t in enumerate(tokens)}


def run(mode: str, seconds: float) -> float:
    rng = random.Random(7)
    frames, keys = make_frames(mode, 400, rng)
    decoder = TickDecoder(keys)
    bus = EventBus()
    sub = bus.subscribe(TICKS, "chart")
    ticks = 0
    start = time.perf_counter()
    deadline = start + seconds
    while time.perf_counter() < deadline:
        for frame in frames:
            batch = decoder.decode(frame)
            bus.publish_many(TICKS, batch)
            sub.drain()
            ticks += len(batch)
    return ticks / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    full = run("full", args.seconds)
    quote = run("quote", args.seconds / 2)
    print(
        f"kite ticker decode+publish, full mode (depth):  {full:>10,.0f} ticks/s   "
        f"target >= {TARGET:,}  {'OK' if full >= TARGET else 'MISS'}"
    )
    print(f"kite ticker decode+publish, quote mode:         {quote:>10,.0f} ticks/s")
    return 0 if full >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
