"""Orders and the account through the real smartapi-python SDK against the fake."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.broker import OrderChange, OrderNotFound, OrderRejected
from services.brokers.angelone.execution import AngelExecution
from services.brokers.errors import InstrumentUnknown
from services.domain import (
    MarketProtection,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)
from tests.brokers.angelone.conftest import make_execution
from tests.fakes.angelone import FakeAngel


def limit(**kw: object) -> OrderRequest:
    base: dict[str, object] = {
        "key": "NSE:SBIN", "side": Side.BUY, "quantity": 5, "order_type": OrderType.LIMIT,
        "product": Product.CNC, "price": Decimal("800.05"),
    }  # fmt: skip
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


async def test_place_modify_cancel_round_trip(execution: AngelExecution, fake: FakeAngel) -> None:
    order = await execution.place_order(limit(tag="T1"))
    assert order.status is OrderStatus.PENDING and order.request.tag == "T1"
    sent = fake.requests[-1][2]
    assert sent["ordertag"] == "T1" and sent["tradingsymbol"] == "SBIN-EQ"
    assert sent["symboltoken"] == "3045" and sent["price"] == "800.05"
    modified = await execution.modify_order(
        order.order_id, OrderChange(quantity=7, price=Decimal("801.10"))
    )
    assert modified.quantity == 7 and modified.request.price == Decimal("801.1")
    assert modified.status is OrderStatus.OPEN
    cancelled = await execution.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    # The post-change reads used Angel's per-order endpoint (built from _rootUrl, not root).
    assert fake.count("details") >= 2
    with pytest.raises(OrderRejected, match="cannot be modified"):
        await execution.modify_order(order.order_id, OrderChange(quantity=1))


async def test_stop_orders_rest_on_their_trigger(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    sl = await execution.place_order(
        limit(
            order_type=OrderType.SL,
            side=Side.SELL,
            price=Decimal("790.00"),
            trigger_price=Decimal("791.00"),
        )
    )
    assert fake.requests[-1][2]["variety"] == "STOPLOSS"
    assert (await execution.order_status(sl.order_id)).status is OrderStatus.TRIGGER_PENDING


async def test_market_order_uses_angels_protection_by_default(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    order = await execution.place_order(
        limit(order_type=OrderType.MARKET, price=None, product=Product.MIS)
    )
    assert fake.requests[-1][2]["ordertype"] == "MARKET"
    status = await execution.order_status(order.order_id)
    assert status.status is OrderStatus.FILLED and status.average_price == Decimal("812.4")


async def test_market_order_with_own_protection_goes_as_a_limit(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    one_percent = MarketProtection(Decimal("1"))
    order = await execution.place_order(
        limit(order_type=OrderType.MARKET, price=None, market_protection=one_percent)
    )
    sent = fake.requests[-1][2]
    assert fake.requests[-2][1] == "getLtpData"
    assert sent["ordertype"] == "LIMIT" and sent["price"] == "820.50"  # 812.40 + 1 %, on grid
    assert order.request.order_type is OrderType.LIMIT


async def test_refusals_arrive_as_the_taxonomy(execution: AngelExecution, fake: FakeAngel) -> None:
    with pytest.raises(InstrumentUnknown):
        await execution.place_order(limit(key="NSE:NOSUCH"))
    with pytest.raises(OrderRejected, match="Angel One refused"):
        await execution.place_order(limit(price=Decimal("800.03")))  # off the tick grid
    with pytest.raises(OrderRejected, match="no TTL validity"):
        await execution.place_order(limit(validity=Validity.TTL))
    with pytest.raises(OrderNotFound):
        await execution.cancel_order("999")
    with pytest.raises(OrderRejected, match="tag"):
        await execution.place_order(limit(tag="X" * 20))
    assert fake.count("placeOrder") == 1  # only the off-grid one reached Angel


async def test_tag_reuse_is_refused(execution: AngelExecution) -> None:
    await execution.place_order(limit(tag="SAME1"))
    with pytest.raises(OrderRejected, match="already used"):
        await execution.place_order(limit(tag="SAME1"))


async def test_books_positions_holdings_funds(execution: AngelExecution, fake: FakeAngel) -> None:
    assert await execution.orders() == []  # Angel sends null for an empty book
    buy = await execution.place_order(
        limit(order_type=OrderType.MARKET, price=None, product=Product.MIS, quantity=4)
    )
    resting = await execution.place_order(limit(quantity=2))
    orders = {o.order_id: o for o in await execution.orders()}
    assert orders[buy.order_id].status is OrderStatus.FILLED
    assert orders[resting.order_id].status is OrderStatus.OPEN
    fills = await execution.fills()
    assert [(f.order_id, f.quantity, f.price) for f in fills] == [
        (buy.order_id, 4, Decimal("812.40"))
    ]
    positions = await execution.positions()
    assert [(p.key, p.product, p.quantity, p.average_price) for p in positions] == [
        ("NSE:SBIN", Product.MIS, 4, Decimal("812.40"))
    ]
    holdings = await execution.holdings()
    assert [(h.key, h.quantity, h.average_price) for h in holdings] == [
        ("NSE:SBIN", 10, Decimal("701.5"))
    ]
    funds = await execution.funds()
    assert funds.margin_used == Decimal("1600.10") and funds.available_cash == Decimal("248399.90")
    found = await execution.order_by_tag(str(resting.request.tag))
    assert found is not None and found.order_id == resting.order_id
    assert await execution.order_by_tag("NOPE") is None


async def test_book_reads_are_paced_to_one_a_second(fake: FakeAngel) -> None:
    import time

    execution = make_execution(fake, book_interval=0.3)
    started = time.monotonic()
    for _ in range(3):
        await execution.orders()
    assert time.monotonic() - started >= 0.55
    assert fake.count("getOrderBook") == 3


async def test_lot_size_is_checked_by_angel(execution: AngelExecution) -> None:
    with pytest.raises(OrderRejected, match="lot size"):
        await execution.place_order(
            limit(
                key="NFO:NIFTY30DEC26FUT",
                quantity=10,
                product=Product.NRML,
                price=Decimal("24210.50"),
            )
        )
