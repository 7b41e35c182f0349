"""The backtester: a simulated clock driving the terminal's own services.

Nothing here re-implements trading. ``Backtest`` assembles the components the app runs live
(``PaperBroker`` with its matching, charges and MIS square-off; the order path of
``services.order_path``, the same factory the app uses; ``StrategyRunner``; ``BarBuilder``
for recorded ticks) around a ``ManualClock``, and feeds them market data in time order:

* **Recorded ticks** go in exactly as the live feed delivered them: each tick to the quote
  book, the paper broker and the bar builder, then closed bars to the strategy. This is the
  parity path: a recorded live day replays to the same orders and fills.
* **Bars** become two quotes each: the bar's open (when orders sent at the previous close
  meet the market, ``slippage_ticks`` against them) and its close (when positions are marked
  and the strategy decides). The open is skipped for an instrument with nothing working and
  nothing held, which keeps a quiet replay fast.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from services.bars import BarBuilder, bucket_end
from services.bus import BARS, FILLS, EventBus
from services.clock import ManualClock, to_ist
from services.domain import Bar, Depth, DepthLevel, Fill, Funds, Order, Tick, Timeframe
from services.instruments import InstrumentRegistry
from services.order_path import build_order_path
from services.paper.broker import DEFAULT_SQUARE_OFF, PaperBroker
from services.quotes import QuoteBook
from services.risk.limits import RiskLimits
from services.strategies.base import Strategy
from services.strategies.runner import Refusal, StrategyRunner

BOOK_DEPTH = 10**9  # a bar's quote is not a book: fills are not limited by displayed size


@dataclass(frozen=True, slots=True)
class BacktestConfig:
    opening_balance: Decimal = Decimal(1_000_000)
    tariff: str = "zerodha"
    limits: RiskLimits = field(default_factory=RiskLimits)
    square_off_at: time | None = DEFAULT_SQUARE_OFF
    slippage_ticks: int = 1


@dataclass(frozen=True, slots=True)
class EquityPoint:
    ts: datetime
    equity: Decimal


@dataclass
class BacktestResult:
    strategy: str
    keys: list[str]
    start: datetime | None
    end: datetime | None
    bars: int
    orders: list[Order]
    fills: list[Fill]
    refusals: list[Refusal]
    equity: list[EquityPoint]
    funds: Funds
    first_prices: dict[str, Decimal]
    last_prices: dict[str, Decimal]
    # Each instrument's last price of each IST day: the buy-and-hold benchmark's curve.
    daily_closes: dict[str, dict[date, Decimal]] = field(default_factory=dict)


class Backtest:
    def __init__(
        self,
        strategy: Strategy,
        instruments: InstrumentRegistry,
        start: datetime,
        config: BacktestConfig | None = None,
    ) -> None:
        self.config = config or BacktestConfig()
        self.clock = ManualClock(start)
        self.bus = EventBus()
        self.instruments = instruments
        self.broker = PaperBroker(
            instruments,
            self.bus,
            self.clock,
            opening_balance=self.config.opening_balance,
            tariff=self.config.tariff,
            square_off_at=self.config.square_off_at,
        )
        self.quotes = QuoteBook(self.bus)
        path = build_order_path(
            self.broker,
            instruments,
            self.quotes,
            self.bus,
            self.clock,
            self.config.limits,
            funds_until_known=self.config.opening_balance,
        )
        self.orders = path.orders
        self.risk = path.risk
        self.strategy = strategy
        self.runner = StrategyRunner(strategy, self.orders, self.clock)
        self._fills = self.bus.subscribe(FILLS, "backtest", lossless=True)
        self._all_fills: list[Fill] = []
        self._equity: list[EquityPoint] = []
        self._first: dict[str, Decimal] = {}
        self._last: dict[str, Tick] = {}
        self._closes: dict[str, dict[date, Decimal]] = {}
        self._bars = 0

    # -- replay --------------------------------------------------------------------------------
    async def run_bars(
        self, bars: Iterable[Bar], progress: Callable[[int], None] | None = None
    ) -> BacktestResult:
        """Replay closed bars of the strategy's timeframe, oldest first across instruments."""
        timeframe = self.strategy.timeframe
        step = timedelta(seconds=timeframe.seconds)
        fixed_length = timeframe in (Timeframe.M1, Timeframe.M5, Timeframe.M15)
        decide = self.runner.decide
        first = self._first
        closes = self._closes
        pending: dict[str, Bar] = {}  # closes not yet quoted: nobody needed them so far
        idle = True  # nothing working and nothing held anywhere: only the strategy runs
        ordered = bars if _is_sorted(bars) else sorted(bars, key=lambda b: (b.start, b.key))
        for bar in ordered:
            if bar.timeframe is not timeframe:
                continue
            self._bars += 1
            if bar.key not in first:
                first[bar.key] = bar.open
                closes[bar.key] = {}
            closes[bar.key][to_ist(bar.start).date()] = bar.close
            if not bar.closed:
                bar = replace(bar, closed=True)
            end = bar.start + step if fixed_length else bucket_end(bar.start, timeframe)
            if idle:
                pending[bar.key] = bar
                self.clock.set(end)
                requests = decide(bar)
                if not requests:
                    continue
                for waiting in pending.values():
                    self._quote(waiting, waiting.close, end, at_open=False)
                pending.clear()
            else:
                if self._busy(bar.key):
                    self._quote(bar, bar.open, bar.start, at_open=True)
                    await self._settle()
                self._quote(bar, bar.close, end, at_open=False)
                await self._settle()
                self._equity.append(EquityPoint(end, self._equity_now()))
                requests = decide(bar)
            if requests:
                await self.runner.submit(requests)
            self.orders.apply_pending()
            idle = not self.orders.open_orders() and not any(
                p.quantity for p in self.orders.positions()
            )
            if progress is not None and self._bars % 1000 == 0:
                progress(self._bars)
        for waiting in pending.values():
            self._last_close(waiting)
        return await self._result()

    async def run_ticks(
        self, ticks: Iterable[Tick], progress: Callable[[int], None] | None = None
    ) -> BacktestResult:
        """Replay recorded ticks exactly as the feed delivered them (the parity path)."""
        builder = BarBuilder(self.bus, (self.strategy.timeframe,))
        bars = self.bus.subscribe(BARS, "backtest-bars", lossless=True)
        for n, tick in enumerate(ticks, 1):
            self.clock.set(max(tick.ts, self.clock.now()))
            self._first.setdefault(tick.key, tick.last_price)
            self._last[tick.key] = tick
            self.quotes.update(tick)
            self.broker.on_tick(tick)
            builder.on_tick(tick)
            await self._settle()
            for bar in bars.drain():
                if bar.closed:
                    self._bars += 1
                    await self.runner.on_bar(bar)
            self.orders.apply_pending()
            if progress is not None and n % 10_000 == 0:
                progress(n)
        bars.close()
        return await self._result()

    # -- internals -----------------------------------------------------------------------------
    def _last_close(self, bar: Bar) -> None:
        """Remember a close nobody quoted (for buy-and-hold and the report)."""
        previous = self._last.get(bar.key)
        if previous is None or previous.ts <= bar.start:
            self._last[bar.key] = Tick(
                bar.key, bar.start, bar.close, 0, bar.volume, bar.open, bar.high, bar.low,
                bar.close,
            )

    def _busy(self, key: str) -> bool:
        """True when the broker has a working order or a position in ``key``."""
        return any(o.key == key for o in self.orders.open_orders()) or any(
            p.key == key and p.quantity for p in self.orders.positions()
        )

    def _quote(self, bar: Bar, price: Decimal, ts: datetime, *, at_open: bool) -> None:
        self.clock.set(max(ts, self.clock.now()))
        instrument = self.instruments.get(bar.key)
        tick_size = instrument.tick_size if instrument is not None else Decimal("0.05")
        slip = tick_size * self.config.slippage_ticks
        depth = Depth(
            bids=(DepthLevel(price - slip, BOOK_DEPTH, 1),),
            asks=(DepthLevel(price + slip, BOOK_DEPTH, 1),),
        )
        previous = self._last.get(bar.key)
        tick = Tick(
            bar.key,
            self.clock.now(),
            price,
            0,
            bar.volume,
            bar.open,
            bar.high if not at_open else bar.open,
            bar.low if not at_open else bar.open,
            previous.close if previous is not None else bar.open,
            depth,
        )
        self._last[bar.key] = tick
        self.quotes.update(tick)
        self.broker.on_tick(tick)

    async def _settle(self) -> None:
        """Let the order manager and the strategy see what the broker just did."""
        self.orders.apply_pending()
        fills = self._fills.drain()
        if not fills:
            return
        self._all_fills.extend(fills)
        for fill in fills:
            await self.runner.on_fill(fill)

    def _equity_now(self) -> Decimal:
        funds = self.broker.current_funds()
        return funds.opening_balance + funds.net_pnl

    async def _result(self) -> BacktestResult:
        funds = self.broker.current_funds()
        self._equity.append(EquityPoint(self.clock.now(), self._equity_now()))
        orders = sorted(await self.broker.orders(), key=lambda o: (o.placed_at, o.order_id))
        return BacktestResult(
            strategy=self.strategy.name,
            keys=sorted(self._first),
            start=None,
            end=self.clock.now(),
            bars=self._bars,
            orders=orders,
            fills=list(self._all_fills),
            refusals=list(self.runner.refusals),
            equity=list(self._equity),
            funds=funds,
            first_prices=dict(self._first),
            last_prices={k: t.last_price for k, t in self._last.items()},
            daily_closes={k: dict(v) for k, v in self._closes.items()},
        )


def _is_sorted(bars: Iterable[Bar]) -> bool:
    if not isinstance(bars, list):
        return False
    return all(a.start <= b.start for a, b in itertools.pairwise(bars))
