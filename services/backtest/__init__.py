"""Backtests on the live code path: stored or fetched bars (or recorded ticks) replayed
through the same strategies, order manager, risk checks, paper matching and charges."""

from services.backtest.engine import Backtest, BacktestConfig, BacktestResult
from services.backtest.stats import Statistics, statistics

__all__ = ["Backtest", "BacktestConfig", "BacktestResult", "Statistics", "statistics"]
