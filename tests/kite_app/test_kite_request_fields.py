"""``OrderRequest.amo`` and ``market_protection`` reach Kite as sent, through the real SDK."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.broker import OrderRejected
from services.clock import ManualClock
from services.domain import OrderRequest, OrderType, Product, Side
from tests.brokers.conftest import MARKET_HOURS, make_broker
from tests.fakes.kite_server import FakeKite


def market(protection: str | None = None, *, amo: bool = False) -> OrderRequest:
    return OrderRequest(
        "NSE:INFY",
        Side.BUY,
        1,
        OrderType.MARKET,
        Product.CNC,
        amo=amo,
        market_protection=None if protection is None else Decimal(protection),
    )


async def test_amo_flag_places_an_after_market_order_in_session_hours(fake: FakeKite) -> None:
    broker = make_broker(fake, ManualClock(MARKET_HOURS))
    order = await broker.place_order(
        OrderRequest(
            "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1500"), amo=True
        )
    )
    assert fake.orders[order.order_id]["variety"] == "amo"
    assert (await broker.order(order.order_id)).request.amo is True
    regular = await broker.place_order(market())
    assert fake.orders[regular.order_id]["variety"] == "regular"


@pytest.mark.parametrize(("given", "sent"), [(None, -1), ("-1", -1), ("3", 3), ("2.5", 2.5)])
async def test_market_protection_is_sent(fake: FakeKite, given: str | None, sent: float) -> None:
    broker = make_broker(fake, ManualClock(MARKET_HOURS))
    order = await broker.place_order(market(given))
    assert fake.orders[order.order_id]["market_protection"] == sent


@pytest.mark.parametrize("bad", ["0", "101", "-5"])
async def test_unusable_market_protection_is_refused_before_kite(fake: FakeKite, bad: str) -> None:
    broker = make_broker(fake, ManualClock(MARKET_HOURS))
    with pytest.raises(OrderRejected, match="market protection"):
        await broker.place_order(market(bad))
    assert fake.journal.count("POST", "/orders/") == 0
