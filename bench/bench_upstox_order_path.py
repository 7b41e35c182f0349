"""Upstox order path: from ``UpstoxExecution.place_order`` to the request leaving for the socket.

Measured: the adapter (tag, master lookup, mapping to ``PlaceOrderV3Request``, the order
throttle's bookkeeping), the hop to a worker thread and the SDK building the request, up to
urllib3's ``request`` on the SDK's pool manager, where the clock stops. The fake's answer
time is shown beside it as the round trip. The terminal's own validation, risk checks and
order journal come before this (see ``bench_kite_order_path.py`` for that part, which is the
same for every broker). Target: p99 < 3 ms.

    .venv/bin/python bench/bench_upstox_order_path.py [--orders N]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import sys
import time
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.brokers.throttle import OrderThrottle
from services.clock import IST, ManualClock
from services.domain import OrderRequest, OrderType, Product, Side
from tests.brokers.upstox.conftest import make_execution
from tests.fakes.upstox import FakeUpstox, default_instruments

TARGET_P99_MS = 3.0
NOW = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


async def measure(fake: FakeUpstox, orders: int) -> tuple[list[float], list[float]]:
    clock = ManualClock(NOW)
    client = make_execution(fake, clock, throttle=OrderThrottle(clock, per_day=10**7))
    client.api.timeout = 5.0
    pool = client.api.client.rest_client.pool_manager
    sent_at: list[float] = []
    original = pool.request

    def stamped(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        if method == "POST" and url.endswith("/v3/order/place"):
            sent_at.append(time.perf_counter())
        return original(method, url, *args, **kwargs)

    pool.request = stamped
    overhead: list[float] = []
    round_trip: list[float] = []
    gc.collect()
    for i in range(orders):
        clock.advance(0.2)
        price = Decimal("1500") + Decimal(i % 500) / 10
        request = OrderRequest("NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=price)
        started = time.perf_counter()
        await client.place_order(request)
        done = time.perf_counter()
        overhead.append((sent_at[-1] - started) * 1000)
        round_trip.append((done - started) * 1000)
    client.api.close()
    return overhead, round_trip


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=400)
    args = parser.parse_args()
    with FakeUpstox(instruments=default_instruments(NOW.date())) as fake:
        overhead, round_trip = asyncio.run(measure(fake, args.orders + 20))
    overhead, round_trip = overhead[20:], round_trip[20:]  # warm-up
    p99 = pct(overhead, 0.99)
    print(f"orders: {len(overhead)} (LIMIT, NSE:INFY, through UpstoxExecution and the SDK)")
    print(
        f"  place_order -> socket write: p50 {statistics.median(overhead):.3f} ms  "
        f"p99 {p99:.3f} ms  max {max(overhead):.3f} ms   target p99 < {TARGET_P99_MS} ms"
    )
    print(
        f"  place_order -> Upstox's answer (includes the fake server): p50 "
        f"{statistics.median(round_trip):.3f} ms  p99 {pct(round_trip, 0.99):.3f} ms"
    )
    ok = p99 < TARGET_P99_MS
    print("PASS" if ok else "MISS", f"(p99 {p99:.3f} ms)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
