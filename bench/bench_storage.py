"""Encrypted storage benchmarks: tick ingest, latest-500 query, order journal commit.

Prints each figure beside its target (research P14) and exits non-zero on a miss. Numbers on a
shared VM are a floor to re-check on the trader's hardware.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side, Tick
from services.storage import Database, OrderJournal, TickWriter

TICKS = 200_000
BATCH = 1_000
KEYS = 50
QUERIES = 200
ORDERS = 300


def make_tick(key: str, ts: datetime, i: int) -> Tick:
    price = Decimal("100.00") + Decimal(i % 50) / 20
    return Tick(
        key, ts, price, 1, i, Decimal("100"), Decimal("103"), Decimal("97"), Decimal("99.5")
    )


def make_order(order_id: str) -> Order:
    now = datetime.now(UTC)
    request = OrderRequest(
        "NSE:RELIANCE", Side.BUY, 10, OrderType.LIMIT, Product.MIS, price=Decimal("2500.05")
    )
    return Order(order_id, request, OrderStatus.PENDING, now, now)


def p99(xs: list[float]) -> float:
    return sorted(xs)[max(0, int(len(xs) * 0.99) - 1)]


def main() -> int:
    # Pass a directory on the disk under test: /tmp may be tmpfs, where fsync is free.
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        db = Database.open(Path(tmp) / "bench.db", os.urandom(32), create=True)
        t0 = datetime(2026, 1, 5, 3, 45, tzinfo=UTC)
        ticks = [
            make_tick(f"NSE:S{i % KEYS}", t0 + timedelta(milliseconds=i), i) for i in range(TICKS)
        ]
        writer = TickWriter(db, batch_size=BATCH)
        start = time.perf_counter()
        for tick in ticks:
            writer.add(tick)
        writer.flush()
        ingest = TICKS / (time.perf_counter() - start)

        query_ms = []
        for i in range(QUERIES):
            q0 = time.perf_counter()
            rows = db.ticks.latest(f"NSE:S{i % KEYS}", 500)
            query_ms.append((time.perf_counter() - q0) * 1000)
            assert len(rows) == 500

        journal = OrderJournal(db)
        commit_ms = []
        for i in range(ORDERS):
            c0 = time.perf_counter()
            journal.record_intent(make_order(f"b{i}"))
            commit_ms.append((time.perf_counter() - c0) * 1000)
        db.close()

    results = [
        ("tick ingest (encrypted, batches of 1000)", ingest, ">=", 50_000.0, "rows/s"),
        ("latest-500-ticks query, median", statistics.median(query_ms), "<", 2.0, "ms"),
        ("latest-500-ticks query, p99", p99(query_ms), "", 0.0, "ms"),
        ("order journal commit (FULL), median", statistics.median(commit_ms), "", 0.0, "ms"),
        ("order journal commit (FULL), p99", p99(commit_ms), "<", 5.0, "ms"),
    ]
    missed = False
    for name, value, op, target, unit in results:
        ok = True if not op else (value >= target if op == ">=" else value < target)
        missed |= not ok
        goal = (
            f"target {op} {target:,.0f} {unit}"
            if op == ">="
            else (f"target {op} {target} {unit}" if op else "")
        )
        print(f"{name:42s} {value:12,.2f} {unit:6s} {goal:22s} {'ok' if ok else 'MISS'}")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
