"""``OrderRequest.amo`` and ``market_protection`` reach Kite as sent, through the real SDK."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.clock import ManualClock
from services.domain import (
    AUTO_PROTECTION,
    MarketProtection,
    OrderRequest,
    OrderType,
    Product,
    Side,
)
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
        market_protection=(
            None
            if protection is None
            else AUTO_PROTECTION
            if protection == "auto"
            else MarketProtection(Decimal(protection))
        ),
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


@pytest.mark.parametrize(("given", "sent"), [(None, -1), ("auto", -1), ("3", 3), ("2.5", 2.5)])
async def test_market_protection_is_sent(fake: FakeKite, given: str | None, sent: float) -> None:
    broker = make_broker(fake, ManualClock(MARKET_HOURS))
    order = await broker.place_order(market(given))
    assert fake.orders[order.order_id]["market_protection"] == sent


@pytest.mark.parametrize("bad", ["0", "101", "-5"])
def test_unusable_market_protection_is_refused_by_the_domain(bad: str) -> None:
    # Out of every broker's range: no order can even carry it, so none reaches Kite.
    with pytest.raises(ValueError, match="market protection"):
        market(bad)
