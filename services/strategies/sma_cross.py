"""SMA crossover: long while the fast average is above the slow one, flat otherwise."""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field

from services.domain import Bar, Fill, OrderRequest, OrderType, Product, Side, Timeframe
from services.strategies.base import StrategyContext


@dataclass
class _Averages:
    fast: deque[float]
    slow: deque[float]
    fast_sum: float = 0.0
    slow_sum: float = 0.0
    above: bool | None = None


@dataclass
class SmaCrossover:
    """Buy ``quantity`` on a golden cross, sell back to flat on a death cross.

    The averages are floats: they only decide *whether* to trade. Prices and money stay
    exact in the order path, which starts at the returned ``OrderRequest``.
    """

    fast: int = 10
    slow: int = 30
    quantity: int = 1
    product: Product = Product.MIS
    timeframe: Timeframe = Timeframe.M5
    name: str = "sma_cross"
    _state: dict[str, _Averages] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not 0 < self.fast < self.slow:
            raise ValueError(
                f"sma_cross needs 0 < fast < slow, got fast={self.fast} slow={self.slow}"
            )
        if self.quantity <= 0:
            raise ValueError("sma_cross needs a positive quantity")

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> Sequence[OrderRequest]:
        s = self._state.get(bar.key)
        if s is None:
            s = self._state[bar.key] = _Averages(deque(), deque())
        close = float(bar.close)
        s.fast.append(close)
        s.fast_sum += close
        if len(s.fast) > self.fast:
            s.fast_sum -= s.fast.popleft()
        s.slow.append(close)
        s.slow_sum += close
        if len(s.slow) > self.slow:
            s.slow_sum -= s.slow.popleft()
        if len(s.slow) < self.slow:
            return ()
        above = s.fast_sum / self.fast > s.slow_sum / self.slow
        crossed = s.above is not None and above != s.above
        s.above = above
        if not crossed:
            return ()
        held = ctx.position(bar.key)
        if above and held <= 0:
            return (self._order(bar.key, Side.BUY, self.quantity - held),)
        if not above and held > 0:
            return (self._order(bar.key, Side.SELL, held),)
        return ()

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[OrderRequest]:
        return ()

    def _order(self, key: str, side: Side, quantity: int) -> OrderRequest:
        return OrderRequest(key, side, quantity, OrderType.MARKET, self.product)
