"""The kill switch against the real paper broker, and against a broker that hangs."""

from __future__ import annotations

import asyncio
import time
from datetime import date
from decimal import Decimal

import pytest

from services.broker import BrokerError, OrderChange, OrderRejected
from services.bus import EventBus
from services.clock import ManualClock
from services.domain import (
    Depth,
    DepthLevel,
    Fill,
    Funds,
    Holding,
    InstrumentKind,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Position,
    Product,
    Side,
    Tick,
)
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper import PaperBroker
from services.risk import KillSwitch, RiskLimits, TradingState
from tests.risk.support import START, World, make_world

DAY = date(2026, 1, 6)


def tick(key: str, price: Decimal, clock: ManualClock) -> Tick:
    step = Decimal("0.05")
    depth = Depth(
        bids=tuple(DepthLevel(price - step * (i + 1), 1_000_000, 10) for i in range(5)),
        asks=tuple(DepthLevel(price + step * (i + 1), 1_000_000, 10) for i in range(5)),
    )
    return Tick(key, clock.now(), price, 1, 1000, price, price, price, price, depth)


class PaperDesk:
    """A paper broker with a book of positions and resting orders built through real fills."""

    def __init__(self) -> None:
        instruments, refs = bundled_universe(DAY)
        self.registry = InstrumentRegistry(instruments)
        self.prices = {key: ref.price for key, ref in refs.items()}
        self.clock = ManualClock(START)
        self.broker = PaperBroker(
            self.registry, EventBus(), self.clock, opening_balance=Decimal(1_000_000_000)
        )

    def feed(self, *keys: str) -> None:
        for key in keys:
            self.broker.on_tick(tick(key, self.prices[key], self.clock))

    async def open_position(self, key: str, side: Side, qty: int) -> None:
        self.feed(key)
        order = await self.broker.place_order(
            OrderRequest(key, side, qty, OrderType.MARKET, Product.MIS)
        )
        self.feed(key)
        [filled] = [o for o in await self.broker.orders() if o.order_id == order.order_id]
        assert filled.status is OrderStatus.FILLED

    async def rest_order(self, key: str, side: Side, qty: int) -> Order:
        away = Decimal("0.9") if side is Side.BUY else Decimal("1.1")
        inst = self.registry.get(key)
        assert inst is not None
        price = (self.prices[key] * away / inst.tick_size).to_integral_value() * inst.tick_size
        order = await self.broker.place_order(
            OrderRequest(key, side, qty, OrderType.LIMIT, Product.MIS, price=price)
        )
        assert order.status is OrderStatus.OPEN, order.status_message
        return order


async def test_kill_switch_flattens_the_paper_book(world: World) -> None:
    desk = PaperDesk()
    equities = [i for i in desk.registry if i.kind is InstrumentKind.EQUITY][:10]
    future = next(i for i in desk.registry if i.kind is InstrumentKind.FUTURE)
    assert future.freeze_quantity is not None and future.lot_size > 1

    for n, inst in enumerate(equities):
        await desk.open_position(inst.key, Side.BUY if n % 2 else Side.SELL, 10 * (n + 1))
    big = future.lot_size * (future.freeze_quantity // future.lot_size + 3)  # above the freeze
    await desk.open_position(future.key, Side.BUY, big)
    resting = [
        await desk.rest_order(inst.key, side, 5)
        for inst in equities
        for side in (Side.BUY, Side.SELL)
        for _ in range(3)
    ]
    assert len(resting) == 60

    engine = world.engine(RiskLimits())
    switch = KillSwitch(desk.broker, engine, instruments=desk.registry.get, clock=desk.clock)
    started = time.perf_counter()
    report = await switch.activate(square_off=True, actor="alice")
    assert time.perf_counter() - started < 1.0

    assert report.ok, report.failed
    assert set(report.cancelled) == {o.order_id for o in resting}
    assert {c.key for c in report.closed} == {i.key for i in equities} | {future.key}
    [future_close] = [c for c in report.closed if c.key == future.key]
    assert len(future_close.orders) == 2  # sliced under the freeze quantity
    assert all(o.quantity <= future.freeze_quantity for o in future_close.orders)
    assert all(o.request.source == "killswitch" for c in report.closed for o in c.orders)

    desk.feed(*(i.key for i in equities), future.key)  # the market orders fill on the next tick
    assert all(p.quantity == 0 for p in await desk.broker.positions())
    assert not [o for o in await desk.broker.orders() if o.status.is_working]

    assert engine.state is TradingState.HALTED
    assert report.state is TradingState.HALTED
    kinds = world.audit_kinds()
    assert kinds == ["risk.state", "killswitch.activate", "killswitch.report"]
    summary = world.audit_log[-1][2]
    assert len(summary["cancelled"]) == 60 and summary["failed"] == []
    with pytest.raises(OrderRejected) as info:
        engine(OrderRequest(equities[0].key, Side.BUY, 1, OrderType.MARKET, Product.MIS),
               equities[0])
    assert info.value.rule == "trading_state"


async def test_kill_switch_without_square_off_leaves_positions(world: World) -> None:
    desk = PaperDesk()
    inst = next(i for i in desk.registry if i.kind is InstrumentKind.EQUITY)
    await desk.open_position(inst.key, Side.BUY, 10)
    await desk.rest_order(inst.key, Side.BUY, 5)
    report = await KillSwitch(desk.broker, world.engine()).activate(square_off=False)
    assert len(report.cancelled) == 1 and report.closed == ()
    assert [p.quantity for p in await desk.broker.positions()] == [10]


class HangingBroker:
    """A broker whose every other cancel and one square-off never answer."""

    name = "hanging"

    def __init__(self) -> None:
        now = START
        self._orders = [
            Order(f"H{i}", OrderRequest("NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.MIS,
                                        price=Decimal(900)), OrderStatus.OPEN, now, now)
            for i in range(20)
        ]
        self.placed: list[OrderRequest] = []

    async def place_order(self, request: OrderRequest) -> Order:
        if request.key == "NSE:TCS":
            await asyncio.sleep(30)
        if request.key == "NSE:SBIN":
            raise BrokerError("RMS: market closed")
        self.placed.append(request)
        return Order(f"S{len(self.placed)}", request, OrderStatus.OPEN, START, START)

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        raise NotImplementedError

    async def cancel_order(self, order_id: str) -> Order:
        if int(order_id[1:]) % 2:
            await asyncio.sleep(30)
        order = next(o for o in self._orders if o.order_id == order_id)
        return order.evolve(OrderStatus.CANCELLED, START)

    async def orders(self) -> list[Order]:
        return list(self._orders)

    async def fills(self) -> list[Fill]:
        return []

    async def positions(self) -> list[Position]:
        return [
            Position("NSE:INFY", Product.MIS, quantity=-7),
            Position("NSE:TCS", Product.MIS, quantity=3),
            Position("NSE:SBIN", Product.CNC, quantity=4),
            Position("NSE:HDFCBANK", Product.MIS, quantity=0),
        ]

    async def holdings(self) -> list[Holding]:
        return []

    async def funds(self) -> Funds:
        return Funds(Decimal(0), Decimal(0), Decimal(0))


async def test_kill_switch_finishes_within_a_second_when_the_broker_hangs() -> None:
    world = make_world()
    broker = HangingBroker()
    engine = world.engine()
    started = time.perf_counter()
    report = await KillSwitch(broker, engine, call_timeout=0.3, budget=0.9).activate(True)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0
    assert engine.state is TradingState.HALTED
    assert sorted(report.cancelled) == sorted(f"H{i}" for i in range(0, 20, 2))
    cancel_failures = {f.target: f.reason for f in report.failed if f.action == "cancel"}
    assert cancel_failures == {f"H{i}": "timed out" for i in range(1, 20, 2)}
    assert [(c.key, c.quantity) for c in report.closed] == [("NSE:INFY", -7)]
    assert broker.placed[0].side is Side.BUY and broker.placed[0].quantity == 7
    close_failures = {f.target: f.reason for f in report.failed if f.action == "close"}
    assert close_failures == {
        "NSE:TCS/MIS": "timed out (0 of 3 sent)",
        "NSE:SBIN/CNC": "BrokerError: RMS: market closed (0 of 4 sent)",
    }
    assert world.audit_log[-1][0] == "killswitch.report"
    assert len(world.audit_log[-1][2]["failed"]) == 12


async def test_kill_switch_resume_lifts_the_halt_with_a_reason_and_is_audited(
    world: World,
) -> None:
    desk = PaperDesk()
    inst = next(i for i in desk.registry if i.kind is InstrumentKind.EQUITY)
    engine = world.engine(RiskLimits())
    switch = KillSwitch(desk.broker, engine, instruments=desk.registry.get, clock=desk.clock)
    await switch.activate(square_off=False, actor="alice")
    assert engine.state is TradingState.HALTED

    with pytest.raises(ValueError):
        await switch.resume("alice", "   ")
    assert engine.state is TradingState.HALTED

    state = await switch.resume("alice", "checked the book")
    assert state is TradingState.ACTIVE and engine.state is TradingState.ACTIVE
    assert world.audit_kinds()[-2:] == ["risk.resume", "killswitch.resume"]
    assert world.audit_log[-1][2]["reason"] == "checked the book"
    world.prices[inst.key] = desk.prices[inst.key]
    engine(OrderRequest(inst.key, Side.BUY, 1, OrderType.MARKET, Product.MIS), inst)  # passes
