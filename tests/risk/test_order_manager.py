"""The engine plugs into the real order manager as a pre-trade check, unchanged."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.broker import OrderChange, OrderRejected
from services.bus import EventBus
from services.domain import InstrumentKind, OrderRequest, OrderType, Product, Side
from services.instruments import InstrumentRegistry, bundled_universe
from services.orders import OrderManager
from services.paper import PaperBroker
from services.risk import CallbackContext, RiskEngine, RiskLimits
from tests.risk.support import World


async def test_a_risk_rejection_never_reaches_the_broker(world: World) -> None:
    instruments, refs = bundled_universe(date(2026, 1, 6))
    registry = InstrumentRegistry(instruments)
    prices = {key: ref.price for key, ref in refs.items()}
    broker = PaperBroker(registry, EventBus(), world.clock)
    context = CallbackContext(clock=world.clock, last_price_of=prices.get)
    engine = RiskEngine(RiskLimits(max_order_value=Decimal(100_000)), context)

    class Quotes:
        def last_price(self, key: str) -> Decimal | None:
            return prices.get(key)

    manager = OrderManager(broker, registry, Quotes(), EventBus(), world.clock, checks=[engine])
    inst = next(i for i in instruments if i.kind is InstrumentKind.EQUITY)
    price = prices[inst.key]
    too_big = int(Decimal(100_000) / price) + 1
    with pytest.raises(OrderRejected) as info:
        await manager.submit(
            OrderRequest(inst.key, Side.BUY, too_big, OrderType.LIMIT, Product.CNC, price=price)
        )
    assert info.value.rule == "max_order_value"
    assert await broker.orders() == []
    order = await manager.submit(
        OrderRequest(inst.key, Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=price)
    )
    assert [o.order_id for o in await broker.orders()] == [order.order_id]
    assert engine.rejections()["max_order_value"] == 1


async def test_modifications_pass_the_same_per_order_limits(world: World) -> None:
    """A modify cannot move an order past a limit, and is not counted as a new open order."""
    instruments, refs = bundled_universe(date(2026, 1, 6))
    registry = InstrumentRegistry(instruments)
    prices = {key: ref.price for key, ref in refs.items()}
    bus = EventBus()
    broker = PaperBroker(registry, bus, world.clock)
    context = CallbackContext(clock=world.clock, last_price_of=prices.get)

    class Quotes:
        def last_price(self, key: str) -> Decimal | None:
            return prices.get(key)

    manager = OrderManager(broker, registry, Quotes(), bus, world.clock)
    limits = RiskLimits(
        max_open_orders=1, max_order_value=Decimal(100_000), max_orders_per_second=None
    )
    engine = RiskEngine(limits, context)
    context.open_orders_of = manager.open_orders  # type: ignore[misc]
    manager.checks.append(engine)
    key = "NSE:INFY"
    price = prices[key]
    order = await manager.submit(
        OrderRequest(key, Side.BUY, 10, OrderType.LIMIT, Product.MIS, price=price - 5)
    )
    # At the open-order limit, modifying the one open order is still allowed...
    moved = await manager.modify(order.order_id, OrderChange(price=price - 4))
    assert moved.request.price == price - 4
    # ...but not past the value limit, and the broker never sees that modification.
    too_many = int(Decimal(100_000) / price) + 1
    with pytest.raises(OrderRejected) as info:
        await manager.modify(order.order_id, OrderChange(quantity=too_many))
    assert info.value.rule == "max_order_value"
    assert (await broker.orders())[0].request.quantity == 10
    # A second new order is refused by the open-order limit.
    with pytest.raises(OrderRejected, match="max_open_orders"):
        await manager.submit(
            OrderRequest(key, Side.BUY, 1, OrderType.LIMIT, Product.MIS, price=price - 5)
        )
