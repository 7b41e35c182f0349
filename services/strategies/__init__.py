"""Rule-based strategies: the same interface drives the backtester and paper or live trading.

A strategy only turns bars and fills into order requests; everything after that (the order
manager, the risk checks, the broker, the charges) is the terminal's one order path, so a
strategy cannot behave differently in a backtest than it does live.
"""

from services.strategies.base import Strategy, StrategyContext
from services.strategies.opening_range import OpeningRangeBreakout
from services.strategies.runner import StrategyRunner
from services.strategies.sma_cross import SmaCrossover

BUILT_IN: dict[str, type[SmaCrossover] | type[OpeningRangeBreakout]] = {
    "sma_cross": SmaCrossover,
    "orb": OpeningRangeBreakout,
}

__all__ = [
    "BUILT_IN",
    "OpeningRangeBreakout",
    "SmaCrossover",
    "Strategy",
    "StrategyContext",
    "StrategyRunner",
]
