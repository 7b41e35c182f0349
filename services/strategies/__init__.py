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


def build_strategy(
    name: str, params: dict[str, str], *, quantity: int, product: str, timeframe: str
) -> SmaCrossover | OpeningRangeBreakout:
    """A built-in strategy from the command line's words; a bad word is a ``ValueError``."""
    from services.domain import Product, Timeframe

    cls = BUILT_IN.get(name)
    if cls is None:
        raise ValueError(f"unknown strategy {name!r}; built in: {', '.join(sorted(BUILT_IN))}")
    allowed = {"sma_cross": {"fast", "slow"}, "orb": {"minutes"}}[name]
    unknown = set(params) - allowed
    if unknown:
        raise ValueError(
            f"{name} takes {', '.join(sorted(allowed))}; not {', '.join(sorted(unknown))}"
        )
    try:
        numbers = {k: int(v) for k, v in params.items()}
    except ValueError as e:
        raise ValueError(f"{name}: parameters are whole numbers ({e})") from None
    return cls(
        quantity=quantity,
        product=Product(product),
        timeframe=Timeframe(timeframe),
        **numbers,  # type: ignore[arg-type]
    )
