"""Backtest replay rate through the full path (strategy, order manager, risk, paper broker).

Prints bars per second on one core for a year of 1-minute bars of one symbol, twice: with a
strategy that never signals (the target, >= 200,000 bars/s) and with an SMA crossover that
trades (reported). Median of three runs; exits non-zero when the quiet rate misses.
"""

from __future__ import annotations

import asyncio
import math
import statistics
import sys
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from decimal import Decimal

from services.backtest import Backtest
from services.clock import IST
from services.domain import Bar, Fill, OrderRequest, Timeframe
from services.instruments import InstrumentRegistry, bundled_universe
from services.strategies import SmaCrossover
from services.strategies.base import StrategyContext

TARGET = 200_000
KEY = "NSE:RELIANCE"
START = datetime(2025, 12, 1, 9, 15, tzinfo=IST)


class Quiet:
    name = "quiet"
    timeframe = Timeframe.M1

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> Sequence[OrderRequest]:
        return ()

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[OrderRequest]:
        return ()


def year_of_minutes() -> list[Bar]:
    bars: list[Bar] = []
    day = START
    n = 0
    while len(bars) < 250 * 375:
        if day.weekday() < 5:
            t = day
            for _ in range(375):
                c = Decimal(1500 + round(40 * math.sin(n / 500), 1))
                bars.append(Bar(KEY, Timeframe.M1, t, c, c + 1, c - 1, c, 100, True))
                t += timedelta(minutes=1)
                n += 1
        day += timedelta(days=1)
    return bars


async def rate(strategy: object, bars: list[Bar]) -> float:
    registry = InstrumentRegistry(bundled_universe(START.date())[0])
    backtest = Backtest(strategy, registry, bars[0].start)  # type: ignore[arg-type]
    began = time.perf_counter()
    result = await backtest.run_bars(bars)
    elapsed = time.perf_counter() - began
    assert result.bars == len(bars)
    return len(bars) / elapsed


def main() -> int:
    bars = year_of_minutes()
    quiet = statistics.median(asyncio.run(rate(Quiet(), bars)) for _ in range(3))
    trading = statistics.median(
        asyncio.run(rate(SmaCrossover(fast=20, slow=60, timeframe=Timeframe.M1), bars))
        for _ in range(3)
    )
    print(f"backtest replay, no signal: {quiet:,.0f} bars/s (target >= {TARGET:,})")
    print(f"backtest replay, SMA crossover trading: {trading:,.0f} bars/s (reported)")
    return 0 if quiet >= TARGET else 1


if __name__ == "__main__":
    sys.exit(main())
