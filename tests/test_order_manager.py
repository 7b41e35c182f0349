"""The order manager in front of a real paper broker: validation, checks, snapshots, resync."""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta
from decimal import Decimal

import pytest

from services.broker import OrderChange, OrderRejected
from services.bus import ORDERS, EventBus
from services.clock import IST, ManualClock
from services.domain import (
    Instrument,
    Order,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
)
from services.orders import OrderManager, apply_change
from services.paper import PaperBroker
from services.validation import OrderValidationError
from tests.test_paper_broker import FUT, REL, START, make_tick, registry, req

D = Decimal


class Quotes:
    """A quote source from a dict: the manager only needs the last price."""

    def __init__(self) -> None:
        self.prices: dict[str, Decimal] = {}

    def last_price(self, key: str) -> Decimal | None:
        return self.prices.get(key)


class Env:
    def __init__(self, checks: tuple[object, ...] = ()) -> None:
        self.bus = EventBus()
        self.clock = ManualClock(START)
        self.instruments = registry()
        self.broker = PaperBroker(self.instruments, self.bus, self.clock)
        self.quotes = Quotes()
        self.acks: list[float] = []
        self.manager = OrderManager(
            self.broker,
            self.instruments,
            self.quotes,
            self.bus,
            self.clock,
            checks,  # type: ignore[arg-type]
            on_ack=self.acks.append,
        )

    def tick(self, key: str, ltp: str, **levels: list[tuple[str, int]]) -> None:
        self.clock.advance(0.5)
        self.quotes.prices[key] = D(ltp)
        self.broker.on_tick(make_tick(key, ltp, self.clock.now(), **levels))  # type: ignore[arg-type]

    async def broker_saw_nothing(self) -> bool:
        return await self.broker.orders() == [] and self.bus.published.get(ORDERS.name, 0) == 0


@pytest.fixture
def env() -> Env:
    return Env()


@pytest.mark.parametrize(
    ("request_", "field", "message"),
    [
        (req("NSE:NOSUCH", Side.BUY, 1), "symbol", "unknown symbol NSE:NOSUCH"),
        (req(REL, Side.BUY, 0), "quantity", "quantity 0 must be positive"),
        (req(REL, Side.BUY, -5), "quantity", "quantity -5 must be positive"),
        (
            req(FUT, Side.BUY, 50, product=Product.NRML),
            "quantity",
            "quantity 50 is not a multiple of lot size 65",
        ),
        (
            req(REL, Side.BUY, 1, OrderType.LIMIT, price="101.03"),
            "price",
            "price 101.03 is not a multiple of tick size 0.05",
        ),
        (
            req(REL, Side.BUY, 1, OrderType.SL_M, trigger="1495"),
            "trigger_price",
            "trigger price 1495 must be above the last price 1500 for a stop-loss buy",
        ),
        (
            req(REL, Side.SELL, 1, OrderType.SL, price="1500", trigger="1505"),
            "trigger_price",
            "trigger price 1505 must be below the last price 1500 for a stop-loss sell",
        ),
    ],
)
async def test_invalid_orders_never_reach_the_broker(
    env: Env, request_: OrderRequest, field: str, message: str
) -> None:
    env.quotes.prices[REL] = D("1500")
    with pytest.raises(OrderValidationError) as refused:
        await env.manager.submit(request_)
    assert (refused.value.field, str(refused.value)) == (field, message)
    assert await env.broker_saw_nothing()
    assert env.manager.orders() == [] and env.acks == []


async def test_a_failing_pre_trade_check_blocks_the_order() -> None:
    seen: list[tuple[OrderRequest, Instrument]] = []

    def max_quantity(request: OrderRequest, instrument: Instrument) -> None:
        seen.append((request, instrument))
        if request.quantity > 100:
            raise OrderRejected("quantity 500 exceeds the limit of 100", rule="max_quantity")

    env = Env(checks=(max_quantity,))
    env.tick(REL, "1500")
    with pytest.raises(OrderRejected) as refused:
        await env.manager.submit(req(REL, Side.BUY, 500))
    assert refused.value.rule == "max_quantity"
    assert await env.broker.orders() == []
    assert seen[0][1].key == REL  # the check is handed the instrument
    env.manager.apply_pending()  # the refusal is in the order book with its reason
    (rejected,) = env.manager.orders()
    assert rejected.status is OrderStatus.REJECTED
    assert rejected.status_message == "quantity 500 exceeds the limit of 100"
    order = await env.manager.submit(req(REL, Side.BUY, 5))
    assert order.status is OrderStatus.OPEN


async def test_submit_returns_the_ack_and_records_latency(env: Env) -> None:
    env.tick(REL, "1500")
    order = await env.manager.submit(req(REL, Side.BUY, 5))
    assert order.status is OrderStatus.OPEN
    assert env.manager.order(order.order_id) == order  # known before any bus event is applied
    assert len(env.acks) == 1 and env.acks[0] >= 0
    assert list(env.manager.order_latency) == env.acks


async def test_broker_rejection_comes_back_as_a_rejected_order(env: Env) -> None:
    order = await env.manager.submit(
        req(REL, Side.SELL, 5, OrderType.LIMIT, Product.CNC, price="1500")
    )
    assert order.status is OrderStatus.REJECTED
    assert "needs a CNC holding" in order.status_message


async def test_snapshots_follow_bus_events(env: Env) -> None:
    env.tick(REL, "1500")
    first = await env.manager.submit(req(REL, Side.BUY, 5))
    second = await env.manager.submit(req(REL, Side.BUY, 3, OrderType.LIMIT, price="1400"))
    env.tick(REL, "1500", asks=[("1500.05", 100)])
    assert env.manager.order(first.order_id).status is OrderStatus.OPEN  # not applied yet
    env.manager.apply_pending()
    assert [o.order_id for o in env.manager.orders()] == [second.order_id, first.order_id]
    assert env.manager.order(first.order_id).status is OrderStatus.FILLED
    assert [(f.order_id, f.quantity, f.price) for f in env.manager.fills()] == [
        (first.order_id, 5, D("1500.05"))
    ]
    (position,) = env.manager.positions()
    assert (position.key, position.quantity, position.average_price) == (REL, 5, D("1500.05"))
    assert env.manager.funds() == await env.broker.funds()


async def test_run_applies_events_in_the_background(env: Env) -> None:
    task = asyncio.create_task(env.manager.run())
    env.tick(REL, "1500")
    order = await env.manager.submit(req(REL, Side.BUY, 5))
    env.tick(REL, "1500", asks=[("1500", 100)])
    for _ in range(5):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.manager.order(order.order_id).status is OrderStatus.FILLED
    assert env.manager.positions()[0].quantity == 5


async def test_stale_update_does_not_move_an_order_backwards(env: Env) -> None:
    env.tick(REL, "1500")
    accepted = await env.manager.submit(req(REL, Side.BUY, 5))
    env.tick(REL, "1500", asks=[("1500", 100)])
    env.manager.apply_pending()
    env.bus.publish(ORDERS, accepted)  # a late, reordered copy of the OPEN update
    env.manager.apply_pending()
    assert env.manager.order(accepted.order_id).status is OrderStatus.FILLED


async def test_modify_and_cancel_go_through_the_broker(env: Env) -> None:
    order = await env.manager.submit(req(REL, Side.BUY, 5, OrderType.LIMIT, price="1400"))
    with pytest.raises(OrderValidationError, match="not a multiple of tick size"):
        await env.manager.modify(order.order_id, OrderChange(price=D("1400.02")))
    assert env.broker.order(order.order_id).request.price == D("1400")
    modified = await env.manager.modify(order.order_id, OrderChange(price=D("1405")))
    assert env.manager.order(order.order_id) == modified
    assert modified.request.price == D("1405")
    cancelled = await env.manager.cancel(order.order_id)
    assert env.manager.order(order.order_id) == cancelled
    assert cancelled.status is OrderStatus.CANCELLED


async def test_cancel_all_reports_failures_without_raising(env: Env) -> None:
    env.tick(REL, "1500")
    resting = [
        await env.manager.submit(req(REL, Side.BUY, 1, OrderType.LIMIT, price="1400"))
        for _ in range(2)
    ]
    filled = await env.manager.submit(req(REL, Side.BUY, 1))
    env.tick(REL, "1500", asks=[("1500", 100)])  # fills, but the manager has not heard yet
    cancelled = await env.manager.cancel_all()
    assert sorted(cancelled) == sorted(o.order_id for o in resting)
    assert set(env.manager.cancel_failures) == {filled.order_id}
    assert "FILLED" in env.manager.cancel_failures[filled.order_id]
    assert (await env.broker.funds()).margin_used == D("300.00")  # only the filled position


async def test_resync_reloads_from_the_broker(env: Env) -> None:
    env.tick(REL, "1500")
    placed = env.broker.place(req(REL, Side.BUY, 5))  # behind the manager's back
    env.tick(REL, "1500", asks=[("1500", 100)])
    await env.manager.resync()
    assert env.manager.order(placed.order_id) == env.broker.order(placed.order_id)
    assert len(env.manager.fills()) == 1
    assert env.manager.funds() == await env.broker.funds()


async def test_lagged_subscription_triggers_resync(env: Env) -> None:
    env.tick(REL, "1500")
    order = env.broker.place(req(REL, Side.BUY, 5))
    for _ in range(ORDERS.maxsize + 1):  # flood the lossless topic past the mailbox bound
        env.bus.publish(ORDERS, order)
    env.tick(REL, "1500", asks=[("1500", 100)])
    task = asyncio.create_task(env.manager.run())
    for _ in range(10):
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert env.manager.order(order.order_id) == env.broker.order(order.order_id)
    assert env.manager.order(order.order_id).status is OrderStatus.FILLED


def test_apply_change_drops_fields_the_new_type_does_not_take() -> None:
    stop = req(REL, Side.BUY, 5, OrderType.SL, price="1510", trigger="1505")
    as_market = apply_change(stop, OrderChange(order_type=OrderType.MARKET, quantity=7))
    assert (as_market.price, as_market.trigger_price, as_market.quantity) == (None, None, 7)
    assert apply_change(stop, OrderChange(price=D("1512"))).trigger_price == D("1505")



async def test_an_unacknowledged_order_counts_as_open_for_concurrent_checks() -> None:
    """Two submits racing for the last open-order slot: the second must see the first."""
    release = asyncio.Event()
    env = Env()

    def max_one_open(request: OrderRequest, instrument: Instrument) -> None:
        if len(env.manager.open_orders()) >= 1:
            raise OrderRejected("max_open_orders: 1 open order allowed", rule="max_open_orders")

    env.manager.checks.append(max_one_open)
    place = env.broker.place_order

    async def slow_place(request: OrderRequest) -> Order:
        await release.wait()
        return await place(request)

    env.broker.place_order = slow_place  # type: ignore[method-assign]
    request = req(REL, Side.BUY, 1, OrderType.LIMIT, Product.MIS, price="1490.00")
    first = asyncio.create_task(env.manager.submit(request))
    await asyncio.sleep(0)
    assert [o.status for o in env.manager.open_orders()] == [OrderStatus.PENDING]
    with pytest.raises(OrderRejected, match="max_open_orders"):
        await env.manager.submit(request)
    release.set()
    placed = await first
    assert placed.status is OrderStatus.OPEN
    assert [o.order_id for o in env.manager.open_orders()] == [placed.order_id]


async def test_an_expired_contract_is_refused(env: Env) -> None:
    """An instrument list cached before expiry day must not let an expired contract trade."""
    future = env.instruments.get(FUT)
    assert future is not None and future.expiry is not None
    env.clock.set(datetime.combine(future.expiry + timedelta(days=1), time(10, 0), tzinfo=IST))
    env.tick(FUT, "26000")
    with pytest.raises(OrderValidationError, match="expired on"):
        await env.manager.submit(req(FUT, Side.BUY, future.lot_size))
    assert await env.broker_saw_nothing()
