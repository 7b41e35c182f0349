"""Orders through the real breeze-connect SDK against the fake: placement, market orders by
the aggressive-limit rule, modify, cancel, refusals, snapshots and the API-call budget."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from services.broker import OrderChange
from services.brokers.breeze.config import API_COUNT_NAME
from services.brokers.errors import (
    InstrumentUnknown,
    InsufficientFunds,
    InvalidInput,
    OrderRejected,
    RateLimited,
)
from services.domain import (
    MarketProtection,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Validity,
)
from tests.brokers.breeze.conftest import Rig


def limit(key: str = "NSE:RELIANCE", **kw: object) -> OrderRequest:
    fields: dict[str, object] = {
        "key": key,
        "side": Side.BUY,
        "quantity": 2,
        "order_type": OrderType.LIMIT,
        "product": Product.CNC,
        "price": Decimal("2900.10"),
    }
    fields.update(kw)
    return OrderRequest(**fields)  # type: ignore[arg-type]


def last_body(rig: Rig, method: str) -> dict[str, object]:
    for m, path, _, body in reversed(rig.fake.journal.requests):
        if m == method and path.endswith("/order"):
            data: dict[str, object] = json.loads(body)
            return data
    raise AssertionError(f"no {method} /order sent")


async def test_limit_order_round_trip_through_the_sdk(rig: Rig) -> None:
    broker = await rig.execution()
    order = await broker.place_order(limit(tag="T1"))
    assert order.status is OrderStatus.PENDING and order.order_id
    sent = last_body(rig, "POST")
    assert sent["stock_code"] == "RELIND" and sent["exchange_code"] == "NSE"
    assert sent["product"] == "cash" and sent["order_type"] == "limit"
    assert sent["price"] == "2900.10" and sent["user_remark"] == "T1"
    # The request was signed as ICICI checks it (the fake refuses a bad checksum).
    _, _, headers, _ = rig.fake.journal.requests[-1]
    assert headers["X-Checksum"].startswith("token ")

    status = await broker.order_status(order.order_id)
    assert status.status is OrderStatus.OPEN
    assert status.key == "NSE:RELIANCE" and status.request.price == Decimal("2900.10")
    assert status.request.tag == "T1"

    modified = await broker.modify_order(
        order.order_id, OrderChange(quantity=3, price=Decimal("2901.00"))
    )
    assert modified.quantity == 3 and modified.request.price == Decimal("2901.00")

    cancelled = await broker.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected, match="cancelled"):
        await broker.cancel_order(order.order_id)


async def test_market_buy_becomes_the_aggressive_limit_exactly(rig: Rig) -> None:
    broker = await rig.execution()
    # RELIANCE last 2950.40, tick 0.10: 3 % above is 3038.912 -> 3038.90 (towards the market).
    order = await broker.place_order(limit(order_type=OrderType.MARKET, price=None))
    sent = last_body(rig, "POST")
    assert sent["order_type"] == "limit" and sent["price"] == "3038.90"
    status = await broker.order_status(order.order_id)
    assert status.status is OrderStatus.FILLED  # marketable: filled at the last price
    assert status.average_price == Decimal("2950.40")


async def test_market_sell_on_an_option_keeps_the_five_point_gap(rig: Rig) -> None:
    broker = await rig.execution()
    rig.fake.set_price("NFO", "35002", "20.00")  # 10 % of 20 is 2 < 5 points: the gap wins
    key = next(k for k, c in (await broker.masters.get()).by_key.items() if c.token == "35002")
    await broker.place_order(OrderRequest(key, Side.SELL, 75, OrderType.MARKET, Product.NRML))
    sent = last_body(rig, "POST")
    assert sent["price"] == "15.00" and sent["product"] == "options"
    assert sent["right"] == "put" and sent["strike_price"] == "24300"
    assert str(sent["expiry_date"]).endswith("T06:00:00.000Z")


async def test_market_protection_percent_and_the_circuit_band(rig: Rig) -> None:
    broker = await rig.execution()
    # 50 % above 2950.40 is past the upper circuit (20 % over the close): clamped to it.
    await broker.place_order(
        limit(
            order_type=OrderType.MARKET, price=None, market_protection=MarketProtection(Decimal(50))
        )
    )
    assert last_body(rig, "POST")["price"] == "3540.50"  # the fake's band: 3540.48 on tick


async def test_stop_loss_order(rig: Rig) -> None:
    broker = await rig.execution()
    order = await broker.place_order(
        limit(
            side=Side.SELL,
            order_type=OrderType.SL,
            price=Decimal("2800.00"),
            trigger_price=Decimal("2810.00"),
        )
    )
    sent = last_body(rig, "POST")
    assert sent["order_type"] == "stoploss" and sent["stoploss"] == "2810.00"
    status = await broker.order_status(order.order_id)
    assert status.status is OrderStatus.TRIGGER_PENDING
    assert status.request.trigger_price == Decimal("2810.00")


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (limit(product=Product.MIS), "intraday"),
        (limit(order_type=OrderType.SL_M, price=None, trigger_price=Decimal(2900)), "SL-M"),
        (limit(validity=Validity.TTL), "TTL"),
        (limit(amo=True), "after-market"),
    ],
)
async def test_values_breeze_does_not_offer_are_refused_before_sending(
    rig: Rig, request_: OrderRequest, reason: str
) -> None:
    broker = await rig.execution()
    with pytest.raises(InvalidInput, match=reason):
        await broker.place_order(request_)
    assert rig.fake.journal.count("POST", "/order") == 0


async def test_a_tag_breeze_cannot_carry_is_refused_before_sending(rig: Rig) -> None:
    broker = await rig.execution()
    with pytest.raises(OrderRejected, match="letters and digits") as refused:
        await broker.place_order(limit(tag="not alnum!"))
    assert refused.value.rule == "tag"
    assert rig.fake.journal.count("POST", "/order") == 0


async def test_futures_must_be_nrml_and_unknown_keys_are_refused(rig: Rig) -> None:
    broker = await rig.execution()
    master = await broker.masters.get()
    future = next(k for k, c in master.by_key.items() if c.product == "futures")
    with pytest.raises(InvalidInput, match="NRML"):
        await broker.place_order(limit(key=future, product=Product.MIS, quantity=75))
    with pytest.raises(InstrumentUnknown):
        await broker.place_order(limit(key="NSE:NOSUCH"))


async def test_broker_refusals_map_to_the_taxonomy(rig: Rig) -> None:
    broker = await rig.execution()
    with pytest.raises(InsufficientFunds):
        await broker.place_order(limit(quantity=1000))  # 29 lakh against 5 lakh of funds
    with pytest.raises(InvalidInput, match="tick"):
        await broker.place_order(limit(price=Decimal("2900.15")))


async def test_snapshots(rig: Rig) -> None:
    broker = await rig.execution()
    order = await broker.place_order(limit(price=Decimal("2960.00"), tag="SNAP1"))
    orders = await broker.orders()
    assert [o.order_id for o in orders] == [order.order_id]
    assert orders[0].status is OrderStatus.FILLED
    fills = await broker.fills()
    assert len(fills) == 1 and fills[0].price == Decimal("2950.40") and fills[0].quantity == 2
    positions = await broker.positions()
    assert positions[0].key == "NSE:RELIANCE" and positions[0].quantity == 2
    holdings = await broker.holdings()
    assert holdings[0].key == "NSE:SBIN" and holdings[0].average_price == Decimal("701.50")
    funds = await broker.funds()
    assert funds.opening_balance == Decimal(500000)
    assert funds.margin_used == Decimal("5900.8")
    found = await broker.order_by_tag("SNAP1")
    assert found is not None and found.order_id == order.order_id
    assert await broker.order_by_tag("NOPE") is None


async def test_every_call_is_counted_and_the_count_survives_a_restart(rig: Rig) -> None:
    broker = await rig.execution()
    await broker.funds()
    await broker.funds()
    day = rig.clock.now().date()
    assert rig.counts.load(API_COUNT_NAME, day) == 2
    again = await rig.execution(api_calls_per_day=3)  # a restart: the count is read back
    await again.funds()
    with pytest.raises(RateLimited, match="held back") as caught:
        await again.funds()
    assert caught.value.retry_after is not None and caught.value.retry_after > 3600
    assert rig.fake.journal.count("GET", "/funds") == 3  # the held-back call never left
