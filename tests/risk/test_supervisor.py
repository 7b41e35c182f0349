"""The supervisor halts trading by itself when live P&L crosses the daily loss limit."""

from __future__ import annotations

import asyncio
import contextlib
from decimal import Decimal

from services.bus import ORDERS, POSITIONS, EventBus
from services.domain import Order, OrderStatus, Position, Product, Side
from services.paper import PaperBroker
from services.risk import RiskLimits, StuckOrderMonitor, TradingState
from services.risk.supervisor import RiskSupervisor
from tests.risk.support import EQUITY, FUTURE, World, limit
from tests.test_paper_broker import registry

D = Decimal


async def test_live_loss_beyond_the_daily_limit_halts_trading(world: World) -> None:
    bus = EventBus()
    engine = world.engine(RiskLimits(daily_loss_limit=D(25000), max_drawdown=None))
    broker = PaperBroker(registry(), bus, world.clock)
    supervisor = RiskSupervisor(engine, bus, broker, StuckOrderMonitor(60, world.clock))
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0)

    def mark(eq_last: str, fut_last: str) -> None:
        eq = Position(EQUITY.key, Product.MIS, 100, D(1000), last_price=D(eq_last))
        fut = Position(FUTURE.key, Product.NRML, 75, D(25000), last_price=D(fut_last))
        bus.publish(POSITIONS, eq)
        bus.publish(POSITIONS, fut)

    mark("990", "24900")  # -1,000 and -7,500: inside the limit
    await asyncio.sleep(0.01)
    assert engine.state is TradingState.ACTIVE
    mark("980", "24760")  # -2,000 and -18,000 = -20,000: still inside
    await asyncio.sleep(0.01)
    assert engine.state is TradingState.ACTIVE
    mark("970", "24700")  # -3,000 and -22,500 = -25,500: past the limit
    await asyncio.sleep(0.01)
    assert engine.state is TradingState.HALTED
    assert supervisor.total_pnl() == D(-25500)
    assert world.audit_kinds() == ["risk.auto_halt"]

    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    supervisor.close()


async def test_order_updates_feed_the_stuck_order_monitor(world: World) -> None:
    bus = EventBus()
    broker = PaperBroker(registry(), bus, world.clock)
    stuck = StuckOrderMonitor(30, world.clock)
    supervisor = RiskSupervisor(world.engine(), bus, broker, stuck)
    task = asyncio.create_task(supervisor.run())
    await asyncio.sleep(0)
    now = world.clock.now()
    order = Order("X1", limit(EQUITY, Side.BUY, 10, "990.00"), OrderStatus.OPEN, now, now)
    bus.publish(ORDERS, order)
    await asyncio.sleep(0.01)
    assert stuck.watched() == 1
    world.clock.advance(31)
    assert [o.order_id for o in stuck.stuck()] == ["X1"]
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    supervisor.close()

