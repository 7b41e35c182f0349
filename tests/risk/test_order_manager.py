"""The engine plugs into the real order manager as a pre-trade check, unchanged."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from services.broker import OrderRejected
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
