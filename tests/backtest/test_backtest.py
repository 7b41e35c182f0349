"""The backtester on the live code path: strategies, fills, charges, statistics, parity."""

from __future__ import annotations

import asyncio
import contextlib
import math
from datetime import date, datetime, timedelta
from decimal import Decimal as D

import pytest

from services.backtest import Backtest, BacktestConfig, statistics
from services.bars import BarBuilder
from services.bus import TICKS, EventBus
from services.clock import IST, ManualClock
from services.domain import Bar, OrderStatus, Product, Side, Timeframe
from services.instruments import InstrumentRegistry, bundled_universe
from services.orders import OrderManager
from services.paper.broker import PaperBroker
from services.quotes import QuoteBook
from services.simulator.market import MarketSimulator
from services.strategies import OpeningRangeBreakout, SmaCrossover, StrategyRunner

DAY = date(2026, 3, 10)
REL = "NSE:RELIANCE"
INFY = "NSE:INFY"


def universe() -> InstrumentRegistry:
    return InstrumentRegistry(bundled_universe(DAY)[0])


def wave_bars(key: str, n: int, start: datetime, tf: Timeframe = Timeframe.M5) -> list[Bar]:
    """A smooth wave (period 40 bars) around 1,500, on the tick grid, one bar per bucket."""
    bars: list[Bar] = []
    t = start
    for i in range(n):
        c = D(str(round(1500 + 30 * math.sin(i * 2 * math.pi / 40), 1)))
        bars.append(Bar(key, tf, t, c, c + 1, c - 1, c, 1000, closed=True))
        t += timedelta(seconds=tf.seconds)
        if t.hour * 60 + t.minute >= 15 * 60 + 30:  # next session
            t = datetime.combine(t.date() + timedelta(days=1), datetime.min.time(), IST)
            t = t.replace(hour=9, minute=15)
    return bars


async def test_sma_crossover_trades_at_the_next_open_and_pays_charges() -> None:
    start = datetime(2026, 3, 10, 9, 15, tzinfo=IST)
    bars = wave_bars(REL, 200, start)
    strategy = SmaCrossover(fast=5, slow=15, quantity=10, product=Product.CNC)
    result = await Backtest(strategy, universe(), start).run_bars(bars)
    assert result.bars == 200
    buys = [f for f in result.fills if f.side is Side.BUY]
    sells = [f for f in result.fills if f.side is Side.SELL]
    assert len(buys) >= 2 and len(sells) >= 1
    tick = universe().get(REL).tick_size
    for fill in result.fills:
        # Sent at one bar's close, filled at the next bar's open, one tick of slippage.
        bar = next(b for b in bars if b.start == fill.ts)
        assert fill.price == bar.open + (tick if fill.side is Side.BUY else -tick)
    assert all(o.status is OrderStatus.FILLED for o in result.orders)
    assert all(o.request.source == "strategy:sma_cross" for o in result.orders)
    assert result.funds.charges > 0
    stats = statistics(result)
    assert stats.charges == float(result.funds.charges)
    assert stats.trades == len(sells)
    assert 0 <= stats.max_drawdown < 1
    assert stats.end_equity == pytest.approx(float(result.equity[-1].equity))


async def test_risk_checks_refuse_a_strategy_order_and_the_refusal_is_reported() -> None:
    start = datetime(2026, 3, 10, 9, 15, tzinfo=IST)
    strategy = SmaCrossover(fast=5, slow=15, quantity=100_000, product=Product.CNC)
    result = await Backtest(
        strategy, universe(), start, BacktestConfig(opening_balance=D(100_000))
    ).run_bars(wave_bars(REL, 120, start))
    assert result.fills == []
    assert result.refusals
    assert all(r.request.source == "strategy:sma_cross" for r in result.refusals)


async def test_opening_range_breakout_exits_before_the_square_off() -> None:
    start = datetime(2026, 3, 10, 9, 15, tzinfo=IST)
    bars = []
    for i in range(75):  # one session of 5-minute bars: a range, then a breakout upwards
        c = D(1500) if i < 3 else D(1500) + D(i)
        at = start + timedelta(minutes=5 * i)
        bars.append(Bar(REL, Timeframe.M5, at, c, c + 2, c - 2, c, 100, True))
    orb = OpeningRangeBreakout(minutes=15, quantity=5)
    result = await Backtest(orb, universe(), start).run_bars(bars)
    sides = [(f.side, f.quantity) for f in result.fills]
    assert sides == [(Side.BUY, 5), (Side.SELL, 5)]
    exit_fill = result.fills[-1]
    assert exit_fill.ts.astimezone(IST).time() < datetime(2026, 3, 10, 15, 20).time()
    assert result.funds.charges > 0


async def test_a_live_simulator_day_replays_to_the_same_orders_and_fills() -> None:
    instruments, references = bundled_universe(DAY)
    keep = {REL, INFY}
    instruments = [i for i in instruments if i.key in keep]
    references = {k: v for k, v in references.items() if k in keep}
    registry = InstrumentRegistry(instruments)
    clock = ManualClock(datetime(2026, 3, 10, 9, 15, tzinfo=IST))
    bus = EventBus()
    sim = MarketSimulator(instruments, references, bus, clock, seed=7)
    broker = PaperBroker(registry, bus, clock)
    quotes = QuoteBook(bus)
    builder = BarBuilder(bus, (Timeframe.M1,))
    orders = OrderManager(broker, registry, quotes, bus, clock)
    strategy = SmaCrossover(fast=3, slow=8, quantity=2, timeframe=Timeframe.M1)
    runner = StrategyRunner(strategy, orders, clock)
    recorded = bus.subscribe(TICKS, "recorder", lossless=True)
    tasks = [
        asyncio.create_task(c)
        for c in (broker.run(), quotes.run(), builder.run(), orders.run(), runner.run(bus))
    ]
    ticks = []
    try:
        await asyncio.sleep(0)
        end = datetime(2026, 3, 10, 15, 30, tzinfo=IST)
        while clock.now() < end:
            clock.advance(20)
            for tick in sim.step(clock.now(), 2):
                bus.publish(TICKS, tick)
                for _ in range(30):  # let every live task see this tick before the next
                    await asyncio.sleep(0)
            ticks.extend(recorded.drain())
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
    live_orders = await broker.orders()
    live_fills = await broker.fills()
    assert len(live_fills) >= 4, "the day should have traded"
    assert any(o.request.source == "square-off" for o in live_orders) or all(
        p.quantity == 0 for p in await broker.positions()
    )

    replay = Backtest(
        SmaCrossover(fast=3, slow=8, quantity=2, timeframe=Timeframe.M1),
        InstrumentRegistry(instruments),
        datetime(2026, 3, 10, 9, 15, tzinfo=IST),
        BacktestConfig(),
    )
    result = await replay.run_ticks(ticks)

    def order_view(o):
        return (o.order_id, o.request.tag, o.key, o.side, o.quantity, o.status,
                o.filled_quantity, o.average_price, o.placed_at)

    def fill_view(f):
        return (f.fill_id, f.order_id, f.key, f.side, f.quantity, f.price, f.ts)

    assert [order_view(o) for o in result.orders] == [order_view(o) for o in live_orders]
    assert [fill_view(f) for f in result.fills] == [fill_view(f) for f in live_fills]
    assert result.funds.charges == broker.current_funds().charges
