"""The backtester as a service for the desktop: runs off the event loop, keeps its results.

A backtest is CPU-bound for seconds; it runs on its own thread (with its own event loop, as
the replay's order path is asyncio) so the window keeps painting, and reports progress back
onto the caller's loop. Results are kept in the profile when one is open.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from services.backtest.data import NoBars, simulator_bars, span
from services.backtest.engine import Backtest, BacktestConfig
from services.backtest.stats import statistics
from services.backtest.store import BacktestStore, StoredRun, as_run
from services.domain import Bar, Timeframe
from services.instruments import InstrumentRegistry, bundled_universe
from services.storage.database import Database
from services.strategies import build_strategy


@dataclass(frozen=True, slots=True)
class BacktestRequest:
    strategy: str
    symbols: tuple[str, ...]
    first: date
    last: date
    timeframe: Timeframe = Timeframe.M5
    params: dict[str, str] = field(default_factory=dict)
    quantity: int = 1
    product: str = "MIS"
    source: str = "simulator"  # or "stored"
    capital: Decimal = Decimal(1_000_000)
    tariff: str = "zerodha"


class BacktestService:
    def __init__(self, db: Database | None) -> None:
        self._db = db
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="dalal-backtest")

    async def run(
        self, request: BacktestRequest, progress: Callable[[int, int], None] | None = None
    ) -> StoredRun:
        """Run ``request``; raise ``ValueError`` with a message for a request that cannot run."""
        loop = asyncio.get_running_loop()

        def report(done: int, total: int) -> None:
            if progress is not None:
                loop.call_soon_threadsafe(progress, done, total)

        return await loop.run_in_executor(self._pool, self._run_sync, request, report)

    def _bars(self, request: BacktestRequest) -> list[Bar]:
        if request.source == "simulator":
            return simulator_bars(
                list(request.symbols), request.timeframe, request.first, request.last
            )
        if self._db is None:
            raise NoBars("no profile database is open: use the simulator's history")
        start, end = span(request.first, request.last)
        from services.marketdata.store import HistoryStore

        store = HistoryStore(self._db)
        bars: list[Bar] = []
        for key in request.symbols:
            found = store.bars(key, request.timeframe, start, end) or self._db.bars.between(
                key, request.timeframe, start, end
            )
            if not found:
                raise NoBars(
                    f"no stored {request.timeframe.value} bars for {key} from {request.first} "
                    f"to {request.last}: fetch them (dalal data fetch) or use the simulator"
                )
            bars.extend(found)
        return bars

    def _run_sync(
        self, request: BacktestRequest, report: Callable[[int, int], None]
    ) -> StoredRun:
        try:
            strategy = build_strategy(
                request.strategy, request.params, quantity=request.quantity,
                product=request.product, timeframe=request.timeframe.value,
            )
            bars = self._bars(request)
        except NoBars as e:
            raise ValueError(str(e)) from None
        total = len(bars)
        report(0, total)
        registry = InstrumentRegistry(bundled_universe(request.last)[0])
        config = BacktestConfig(opening_balance=request.capital, tariff=request.tariff)
        backtest = Backtest(strategy, registry, bars[0].start, config)
        result = asyncio.run(backtest.run_bars(bars, lambda done: report(done, total)))
        report(total, total)
        run = as_run(
            result, statistics(result),
            params={**request.params, "quantity": request.quantity, "product": request.product},
            timeframe=request.timeframe, first_day=request.first, last_day=request.last,
            source=request.source,
        )
        if self._db is not None:
            BacktestStore(self._db).save(run)
        return run

    @property
    def keeps_runs(self) -> bool:
        return self._db is not None

    async def runs(self) -> list[StoredRun]:
        if self._db is None:
            return []
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._pool, BacktestStore(self._db).runs)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)
