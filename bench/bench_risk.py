"""Risk check time per order: p50 and p99 of a full pre-trade check, target p99 < 100 us.

A "full" check is one that passes every rule, so every rule runs (a rejection stops early).
The context is realistic for a busy retail desk: the bundled NSE universe, 40 working orders
and 20 open positions that the reduce/margin logic scans, last prices for every instrument.
The manual clock moves 0.2 s between orders so the rate limit never trips. Each run times
50,000 checks; the figure reported is the median of three runs. Exit status 1 on a miss.

    .venv/bin/python bench/bench_risk.py [--checks N] [--runs R]
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services.clock import IST, ManualClock
from services.domain import (
    Instrument,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
)
from services.instruments import bundled_universe
from services.risk import CallbackContext, RiskEngine, RiskLimits

TARGET_P99_US = 100.0


def build() -> tuple[RiskEngine, ManualClock, list[tuple[OrderRequest, Instrument]]]:
    instruments, refs = bundled_universe(date(2026, 1, 6))
    clock = ManualClock(datetime(2026, 1, 6, 10, 0, tzinfo=IST))
    prices = {key: ref.price for key, ref in refs.items()}
    tradable = [i for i in instruments if i.tradable]
    for inst in tradable:  # options: a premium, not the index level
        if inst.kind in (InstrumentKind.CALL, InstrumentKind.PUT):
            prices[inst.key] = Decimal("120.50")
    equities = [i for i in tradable if i.kind is InstrumentKind.EQUITY]
    options = [i for i in tradable if i.kind in (InstrumentKind.CALL, InstrumentKind.PUT)]

    now = clock.now()
    orders = [
        Order(
            f"W{n}",
            OrderRequest(inst.key, Side.BUY, inst.lot_size, OrderType.LIMIT, Product.MIS,
                         price=prices[inst.key] - inst.tick_size * 20),
            OrderStatus.OPEN, now, now,
        )
        for n, inst in enumerate((equities + options)[:40])
    ]
    positions = [
        Position(inst.key, Product.MIS, quantity=inst.lot_size * 2,
                 average_price=prices[inst.key], last_price=prices[inst.key])
        for inst in (options + equities)[:20]
    ]
    context = CallbackContext(
        clock=clock,
        last_price_of=prices.get,
        open_orders_of=lambda: orders,
        positions_of=lambda: positions,
        funds_of=lambda: Decimal(50_000_000),
    )
    engine = RiskEngine(RiskLimits(max_open_orders=100), context)

    flow: list[tuple[OrderRequest, Instrument]] = []
    for n in range(500):
        inst = (equities + options)[n % (len(equities) + len(options))]
        side = Side.BUY if n % 3 else Side.SELL
        offset = inst.tick_size * (n % 7)
        price = prices[inst.key] + (offset if side is Side.SELL else -offset)
        order_type = OrderType.MARKET if n % 5 == 0 else OrderType.LIMIT
        flow.append(
            (
                OrderRequest(inst.key, side, inst.lot_size * (1 + n % 3), order_type,
                             Product.MIS, price=None if order_type is OrderType.MARKET else price),
                inst,
            )
        )
    return engine, clock, flow


def run(checks: int) -> tuple[float, float]:
    engine, clock, flow = build()
    samples: list[int] = []
    perf = time.perf_counter_ns
    gc.collect()
    for n in range(checks):
        request, inst = flow[n % len(flow)]
        clock.advance(0.2)
        start = perf()
        engine(request, inst)
        samples.append(perf() - start)
    samples.sort()
    p50 = samples[len(samples) // 2] / 1000
    p99 = samples[int(len(samples) * 0.99)] / 1000
    return p50, p99


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--checks", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = [run(args.checks) for _ in range(args.runs)]
    p50 = statistics.median(r[0] for r in results)
    p99 = statistics.median(r[1] for r in results)
    print(f"risk check, {args.checks} full checks x {args.runs} runs (median of runs)")
    print(f"  p50 {p50:8.1f} us")
    print(f"  p99 {p99:8.1f} us   target < {TARGET_P99_US:.0f} us")
    ok = p99 < TARGET_P99_US
    print("PASS" if ok else "MISS")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
