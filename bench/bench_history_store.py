"""History store benchmark: fetch and store one year of one-minute bars from a fake provider.

Two figures, each beside the target of >= 100,000 bars/s stored:

1. **fetch + store**: a year of 1m bars of ``US:AAPL`` from the Polygon fake on 127.0.0.1
   (real aiohttp client, Polygon's JSON with paging) through the router into the encrypted
   profile database. The free providers that cover Indian symbols do not keep a year of
   minutes (Yahoo: 30 days), so the year comes from the one fake whose real counterpart does;
   the provider's pacing (5 requests a minute on the free plan) is lifted, because the
   figure is our pipeline's, not Polygon's quota. Printed: bars/s stored (time inside the
   store's writes) and bars/s end to end.
2. **store, NSE grid**: a year of NSE:INFY session bars (375 a day on every trading day of
   the calendar) through the full check (session grid, holidays, prices) and the per-day
   completeness bookkeeping.

Exits non-zero when a "stored" figure (wall clock) misses the target. The CPU-time figure
beside it shows what a quiet core does; on a shared VM the wall figure includes waiting.
"""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

from services.calendar import IST, default_calendar
from services.clock import ManualClock
from services.domain import Bar, Timeframe
from services.marketdata.coverage import RateLimit
from services.marketdata.providers.polygon import PolygonProvider
from services.marketdata.router import MarketDataRouter
from services.marketdata.store import HistoryStore
from services.storage import Database
from tests.fakes.marketdata import FakeMarketData, polygon

TARGET = 100_000
NOW = datetime(2026, 3, 20, 18, 0, tzinfo=IST)


class TimedStore(HistoryStore):
    """The store, timing its own writes (what "stored per second" measures)."""

    seconds = 0.0
    cpu = 0.0
    bars = 0

    def write(self, bars, provider, fetched_at, *, days=()):  # type: ignore[no-untyped-def, override]
        start, cpu = time.perf_counter(), time.thread_time()
        n = super().write(bars, provider, fetched_at, days=days)
        self.seconds += time.perf_counter() - start
        self.cpu += time.thread_time() - cpu
        self.bars += n
        return n


def fetch_and_store(db: Database) -> tuple[int, float, float, float]:
    with FakeMarketData(now=NOW) as fake:
        clock = ManualClock(NOW)
        provider = PolygonProvider(lambda: polygon.KEY, base_url=fake.url("api.polygon.io"),
                                   clock=clock)
        store = TimedStore(db)
        router = MarketDataRouter([provider], store, clock=clock,
                                  rate=lambda r: RateLimit(1000.0, 1000, r.per_day))

        async def run() -> float:
            start = time.perf_counter()
            report = await router.fetch("US:AAPL", Timeframe.M1, NOW - timedelta(days=365), NOW)
            elapsed = time.perf_counter() - start
            await router.close()
            assert not report.unserved, report.unserved
            return elapsed

        elapsed = asyncio.run(run())
    return store.bars, store.seconds, store.cpu, elapsed


def nse_year() -> list[Bar]:
    bars = []
    price = Decimal("1500.00")
    for session in default_calendar().sessions(date(2025, 3, 20), date(2026, 3, 19)):
        at = session.opens_at
        while at < session.closes_at:
            bars.append(Bar("NSE:INFY", Timeframe.M1, at, price, price + 1, price - 1, price,
                            100, closed=True))
            at += timedelta(minutes=1)
    return bars


def store_nse(db: Database) -> tuple[int, float, float]:
    bars = nse_year()
    store = HistoryStore(db)
    start, cpu = time.perf_counter(), time.thread_time()
    # In the chunks a broker serves one-minute bars (60 days a request).
    step = 60 * 375
    for i in range(0, len(bars), step):
        store.write(bars[i:i + step], "bench", NOW)
    return len(bars), time.perf_counter() - start, time.thread_time() - cpu


def main() -> int:
    with tempfile.TemporaryDirectory(dir=sys.argv[1] if len(sys.argv) > 1 else None) as tmp:
        db = Database.open(Path(tmp) / "bench.db", os.urandom(32), create=True)
        try:
            n, store_s, store_cpu, total_s = fetch_and_store(db)
            nse_n, nse_s, nse_cpu = store_nse(db)
        finally:
            db.close()
    stored = n / store_s
    nse_rate = nse_n / nse_s
    ok = stored >= TARGET and nse_rate >= TARGET
    print(f"fetch+store 1 year of 1m US:AAPL from the Polygon fake: {n:,} bars")
    print(f"  stored      {stored:>10,.0f} bars/s   target >= {TARGET:,}  "
          f"{'ok' if stored >= TARGET else 'MISS'}   (CPU time: {n / store_cpu:,.0f} bars/s)")
    print(f"  end to end  {n / total_s:>10,.0f} bars/s   ({total_s:.2f} s incl. HTTP and JSON)")
    print(f"store 1 year of 1m NSE:INFY on the session grid: {nse_n:,} bars")
    print(f"  stored      {nse_rate:>10,.0f} bars/s   target >= {TARGET:,}  "
          f"{'ok' if nse_rate >= TARGET else 'MISS'}   (CPU time: {nse_n / nse_cpu:,.0f} bars/s)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
