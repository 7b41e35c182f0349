"""Orders through the real SDK against the fake: every type, product and validity, slicing,
market protection, the algo-name header, and the books."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.broker import OrderChange, OrderRejected
from services.brokers.errors import InstrumentUnknown, InvalidInput
from services.brokers.upstox.execution import UpstoxExecution
from services.clock import ManualClock
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side, Validity
from tests.brokers.upstox.conftest import make_execution
from tests.fakes.upstox import FakeUpstox


def req(key: str = "NSE:INFY", **kw: object) -> OrderRequest:
    base: dict[str, object] = {
        "key": key,
        "side": Side.BUY,
        "quantity": 1,
        "order_type": OrderType.LIMIT,
        "product": Product.CNC,
        "price": Decimal("1570.10"),
    }
    base.update(kw)
    return OrderRequest(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("order_type", list(OrderType))
@pytest.mark.parametrize("product", [Product.CNC, Product.MIS])
@pytest.mark.parametrize("validity", [Validity.DAY, Validity.IOC])
async def test_every_type_product_and_validity_reaches_upstox_with_its_words(
    fake: FakeUpstox,
    execution: UpstoxExecution,
    order_type: OrderType,
    product: Product,
    validity: Validity,
) -> None:
    price = Decimal("1570.10") if order_type.needs_price else None
    trigger = Decimal("1572.00") if order_type.needs_trigger else None
    order = await execution.place_order(
        req(order_type=order_type, product=product, validity=validity, price=price,
            trigger_price=trigger)
    )
    sent = fake.orders[order.order_id]
    assert sent["order_type"] == order_type.value
    assert sent["product"] == {Product.CNC: "D", Product.MIS: "I"}[product]
    assert sent["validity"] == validity.value
    assert sent["instrument_token"] == "NSE_EQ|INE009A01021"
    assert sent["tag"] == order.request.tag
    status = await execution.order_status(order.order_id)
    assert status.request.product is product
    assert status.request.validity is validity
    assert status.request.order_type is order_type
    assert status.request.price == price
    assert status.request.trigger_price == trigger
    expected = {
        OrderType.MARKET: OrderStatus.FILLED,
        OrderType.LIMIT: OrderStatus.OPEN,
        OrderType.SL: OrderStatus.TRIGGER_PENDING,
        OrderType.SL_M: OrderStatus.TRIGGER_PENDING,
    }[order_type]
    assert status.status is expected


async def test_nrml_on_derivatives_is_upstox_delivery_and_reads_back_as_nrml(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    key = next(i.key for i in (await execution.masters.get()).instruments() if i.kind.value == "CE")
    order = await execution.place_order(
        req(key, quantity=75, product=Product.NRML, price=Decimal("120.05"))
    )
    assert fake.orders[order.order_id]["product"] == "D"
    assert (await execution.order_status(order.order_id)).request.product is Product.NRML


async def test_values_upstox_cannot_express_are_refused_before_sending(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    with pytest.raises(InvalidInput, match="DAY or IOC"):
        await execution.place_order(req(validity=Validity.TTL))
    with pytest.raises(InvalidInput, match="not a product"):
        await execution.place_order(req(product=Product.NRML))
    with pytest.raises(InstrumentUnknown):
        await execution.place_order(req("NSE:NOSUCH"))
    with pytest.raises(InvalidInput, match="index"):
        await execution.place_order(req("NSE:NIFTY 50"))
    with pytest.raises(OrderRejected, match="longer than 40"):
        await execution.place_order(req(tag="x" * 41))
    assert fake.journal.count("POST", "/v3/order/place") == 0


async def test_market_orders_carry_automatic_or_given_market_protection(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    from services.domain import MarketProtection  # lands with the ports

    auto = await execution.place_order(req(order_type=OrderType.MARKET, price=None))
    given = await execution.place_order(
        req(order_type=OrderType.MARKET, price=None,
            market_protection=MarketProtection(Decimal("5")))
    )
    limit = await execution.place_order(req())
    protections = [body.get("market_protection") for body in fake.placed]
    assert protections == [-1, 5, None]
    assert {auto.order_id, given.order_id, limit.order_id} <= set(fake.orders)
    with pytest.raises(InvalidInput, match="between 0 and 25"):
        await execution.place_order(
            req(order_type=OrderType.SL_M, price=None, trigger_price=Decimal("1575"),
                market_protection=MarketProtection(Decimal("30")))
        )


async def test_algo_name_header_is_sent_only_when_configured(
    fake: FakeUpstox, clock: ManualClock, execution: UpstoxExecution
) -> None:
    await execution.place_order(req())
    assert "X-Algo-Name" not in fake.journal.headers("POST", "/v3/order/place")[-1]
    algo = make_execution(fake, clock, algo_name="dalal-terminal")
    order = await algo.place_order(req())
    assert fake.journal.headers("POST", "/v3/order/place")[-1]["X-Algo-Name"] == "dalal-terminal"
    await algo.cancel_order(order.order_id)
    assert fake.journal.headers("DELETE", "/v3/order/cancel")[-1]["X-Algo-Name"] == "dalal-terminal"


async def test_above_freeze_quantity_is_sliced_and_tracked_as_one_order(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    key = next(i.key for i in (await execution.masters.get()).instruments() if i.kind.value == "CE")
    order = await execution.place_order(
        req(key, quantity=75 * 50, product=Product.NRML, price=Decimal("120.05"))
    )
    slices = fake.orders_with_tag(order.request.tag or "")
    assert [s["quantity"] for s in slices] == [1800, 1800, 150]
    assert order.broker_order_id is not None
    assert order.broker_order_id.split(",") == sorted(s["order_id"] for s in slices)
    book = [o for o in await execution.orders() if o.request.tag == order.request.tag]
    assert len(book) == 1 and book[0].quantity == 3750 and book[0].order_id == order.order_id
    fake.fill(slices[0]["order_id"])
    status = await execution.order_status(order.order_id)
    assert status.status is OrderStatus.PARTIALLY_FILLED
    assert status.filled_quantity == 1800
    cancelled = await execution.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    assert cancelled.filled_quantity == 1800
    assert [s["status"] for s in fake.orders_with_tag(order.request.tag or "")] == [
        "complete", "cancelled", "cancelled"
    ]
    fills = await execution.fills()
    assert {f.order_id for f in fills} == {order.order_id}


async def test_modify_changes_price_and_type_and_cancel_ends_the_order(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    order = await execution.place_order(req())
    modified = await execution.modify_order(
        order.order_id, OrderChange(price=Decimal("1571.00"), quantity=3)
    )
    assert modified.request.price == Decimal("1571")
    assert modified.quantity == 3
    assert fake.orders[order.order_id]["price"] == 1571.0
    sl = await execution.place_order(
        req(order_type=OrderType.SL, trigger_price=Decimal("1572.00"))
    )
    to_market = await execution.modify_order(sl.order_id, OrderChange(order_type=OrderType.SL_M))
    assert to_market.request.order_type is OrderType.SL_M
    assert fake.orders[sl.order_id]["order_type"] == "SL-M"
    cancelled = await execution.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected, match="cancelled"):
        await execution.cancel_order(order.order_id)


async def test_books_positions_holdings_and_funds_are_exact(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    order = await execution.place_order(req(order_type=OrderType.MARKET, price=None, quantity=2))
    fills = await execution.fills()
    assert [(f.order_id, f.quantity, f.price) for f in fills] == [
        (order.order_id, 2, Decimal("1573.7"))
    ]
    holdings = await execution.holdings()
    assert holdings[0].key == "NSE:SBIN" and holdings[0].average_price == Decimal("701.5")
    funds = await execution.funds()
    assert funds.available_cash == Decimal("250000.00")
    fake.positions.append(
        {
            "exchange": "NSE", "multiplier": 1.0, "value": 0, "pnl": 0, "product": "I",
            "instrument_token": "NSE_EQ|INE009A01021", "average_price": 1573.7,
            "buy_value": 3147.4, "overnight_quantity": 0, "day_buy_value": 3147.4,
            "day_buy_price": 1573.7, "overnight_buy_amount": 0, "overnight_buy_quantity": 0,
            "day_buy_quantity": 2, "day_sell_value": 0, "day_sell_price": 0,
            "overnight_sell_amount": 0, "overnight_sell_quantity": 0, "day_sell_quantity": 0,
            "quantity": 2, "last_price": 1575.05, "unrealised": 2.7, "realised": 0,
            "sell_value": 0, "tradingsymbol": "INFY", "trading_symbol": "INFY",
            "close_price": 1560.0, "buy_price": 1573.7, "sell_price": 0,
        }
    )
    positions = {(p.key, p.product): p for p in await execution.positions()}
    intraday = positions[("NSE:INFY", Product.MIS)]
    assert intraday.quantity == 2 and intraday.last_price == Decimal("1575.05")
    delivery = positions[("NSE:INFY", Product.CNC)]  # from the market order's trade
    assert delivery.quantity == 2 and delivery.average_price == Decimal("1573.7")
