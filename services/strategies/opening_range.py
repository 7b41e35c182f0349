"""Opening-range breakout with an intraday (MIS) exit before the broker's square-off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal

from services.clock import to_ist
from services.domain import Bar, Fill, OrderRequest, OrderType, Product, Side, Timeframe
from services.strategies.base import StrategyContext

OPEN = time(9, 15)


@dataclass
class _Day:
    day: date
    high: Decimal | None = None
    low: Decimal | None = None
    traded: bool = False


@dataclass
class OpeningRangeBreakout:
    """The first ``minutes`` of the session set a range; the first close outside it enters
    (long above, short below), once a day; every position is closed at ``exit_at``, before
    the 15:20 MIS square-off, so the strategy never relies on the broker to exit.
    """

    minutes: int = 15
    quantity: int = 1
    exit_at: time = time(15, 10)
    timeframe: Timeframe = Timeframe.M5
    name: str = "orb"
    product: Product = Product.MIS
    _days: dict[str, _Day] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if self.minutes <= 0 or self.minutes % (self.timeframe.seconds // 60):
            raise ValueError(
                f"orb: the range of {self.minutes} minutes must be a whole number of "
                f"{self.timeframe} bars"
            )

    def on_bar(self, bar: Bar, ctx: StrategyContext) -> Sequence[OrderRequest]:
        start = to_ist(bar.start)
        today = start.date()
        state = self._days.get(bar.key)
        if state is None or state.day != today:
            state = self._days[bar.key] = _Day(today)
        held = ctx.position(bar.key)
        end = to_ist(bar.start).replace(second=0, microsecond=0)
        minutes_in = (end.hour * 60 + end.minute) - (OPEN.hour * 60 + OPEN.minute)
        if minutes_in < self.minutes:
            state.high = bar.high if state.high is None else max(state.high, bar.high)
            state.low = bar.low if state.low is None else min(state.low, bar.low)
            return ()
        bar_end = (start.hour * 60 + start.minute) + self.timeframe.seconds // 60
        if bar_end >= self.exit_at.hour * 60 + self.exit_at.minute:
            if held:
                side = Side.SELL if held > 0 else Side.BUY
                return (self._order(bar.key, side, abs(held)),)
            return ()
        if state.traded or held or state.high is None or state.low is None:
            return ()
        if bar.close > state.high:
            state.traded = True
            return (self._order(bar.key, Side.BUY, self.quantity),)
        if bar.close < state.low:
            state.traded = True
            return (self._order(bar.key, Side.SELL, self.quantity),)
        return ()

    def on_fill(self, fill: Fill, ctx: StrategyContext) -> Sequence[OrderRequest]:
        return ()

    def _order(self, key: str, side: Side, quantity: int) -> OrderRequest:
        return OrderRequest(key, side, quantity, OrderType.MARKET, self.product)
