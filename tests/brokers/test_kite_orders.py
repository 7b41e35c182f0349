"""Orders through the real kiteconnect SDK against the fake Kite: every path, every fault."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest
import requests

from services.broker import OrderChange, OrderNotFound, OrderRejected
from services.brokers.errors import ThrottleLimited
from services.brokers.kite.config import LIMITS
from services.brokers.kite.errors import OutcomeUnknown, RateLimited
from services.brokers.kite.execution import KiteBroker
from services.brokers.ports import RateWindow
from services.brokers.throttle import OrderThrottle
from services.clock import IST, ManualClock
from services.domain import (
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Timeframe,
    Validity,
)
from tests.brokers.conftest import AFTER_HOURS, make_broker
from tests.fakes.kite_server import FakeKite

PRICES = {
    OrderType.MARKET: (None, None),
    OrderType.LIMIT: (Decimal("1570.1"), None),
    OrderType.SL: (Decimal("1580.5"), Decimal("1580.0")),
    OrderType.SL_M: (None, Decimal("1580.0")),
}
EXPECTED_STATUS = {
    OrderType.MARKET: "COMPLETE",
    OrderType.LIMIT: "OPEN",
    OrderType.SL: "TRIGGER PENDING",
    OrderType.SL_M: "TRIGGER PENDING",
}


def req(
    order_type: OrderType = OrderType.LIMIT,
    product: Product = Product.CNC,
    validity: Validity = Validity.DAY,
    *,
    key: str = "NSE:INFY",
    quantity: int = 2,
    tag: str | None = None,
) -> OrderRequest:
    price, trigger = PRICES[order_type]
    return OrderRequest(
        key, Side.BUY, quantity, order_type, product, validity, price, trigger, tag=tag
    )


@pytest.mark.parametrize("order_type", list(OrderType))
@pytest.mark.parametrize("product", list(Product))
async def test_every_order_type_and_product_reaches_kite_as_sent(
    fake: FakeKite, broker: KiteBroker, order_type: OrderType, product: Product
) -> None:
    order = await broker.place_order(req(order_type, product))
    assert order.status is OrderStatus.PENDING
    sent = fake.orders[order.order_id]
    assert sent["variety"] == "regular"
    assert (sent["order_type"], sent["product"], sent["validity"]) == (
        order_type.value,
        product.value,
        "DAY",
    )
    price, trigger = PRICES[order_type]
    assert Decimal(str(sent["price"])) == (price or 0)
    assert Decimal(str(sent["trigger_price"])) == (trigger or 0)
    # Market and stop-market orders carry Kite's automatic market protection, others none.
    assert sent["market_protection"] == (
        -1 if order_type in (OrderType.MARKET, OrderType.SL_M) else 0
    )
    assert sent["status"] == EXPECTED_STATUS[order_type]
    assert sent["tag"] == order.request.tag
    assert order.request.tag is not None and len(order.request.tag) <= 20


async def test_ioc_validity_is_sent_and_an_unfilled_ioc_is_cancelled(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(req(validity=Validity.IOC))
    assert fake.orders[order.order_id]["validity"] == "IOC"
    assert (await broker.order(order.order_id)).status is OrderStatus.CANCELLED


async def test_ttl_validity_is_refused_before_it_reaches_kite(
    fake: FakeKite, broker: KiteBroker
) -> None:
    with pytest.raises(OrderRejected, match="TTL"):
        await broker.place_order(req(validity=Validity.TTL))
    assert fake.orders == {}


async def test_tags_are_unique_per_order_and_find_the_order_again(
    fake: FakeKite, broker: KiteBroker
) -> None:
    orders = [await broker.place_order(req()) for _ in range(5)]
    tags = {o.request.tag for o in orders}
    assert len(tags) == 5
    for order in orders:
        assert order.request.tag is not None
        found = await broker.find_by_tag(order.request.tag)
        assert found is not None and found.order_id == order.order_id


async def test_own_tag_is_kept_but_not_reused_or_overlong(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(req(tag="basket7leg1"))
    assert fake.orders[order.order_id]["tag"] == "basket7leg1"
    with pytest.raises(OrderRejected, match="already used"):
        await broker.place_order(req(tag="basket7leg1"))
    with pytest.raises(OrderRejected, match="longer than 20 characters"):
        await broker.place_order(req(tag="x" * 21))
    assert len(fake.orders) == 1


async def test_modify_regular_limit_order(fake: FakeKite, broker: KiteBroker) -> None:
    order = await broker.place_order(req())
    modified = await broker.modify_order(
        order.order_id, OrderChange(quantity=4, price=Decimal("1565.0"))
    )
    assert modified.status is OrderStatus.OPEN
    assert modified.request.quantity == 4
    assert modified.request.price == Decimal("1565")
    assert fake.orders[order.order_id]["modified"] is True


async def test_modify_to_market_carries_market_protection(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(req())
    filled = await broker.modify_order(order.order_id, OrderChange(order_type=OrderType.MARKET))
    assert filled.status is OrderStatus.FILLED
    assert fake.orders[order.order_id]["order_type"] == "MARKET"


async def test_modify_stop_trigger(fake: FakeKite, broker: KiteBroker) -> None:
    order = await broker.place_order(req(OrderType.SL_M))
    moved = await broker.modify_order(order.order_id, OrderChange(trigger_price=Decimal("1590")))
    assert moved.status is OrderStatus.TRIGGER_PENDING
    assert moved.request.trigger_price == Decimal("1590")


async def test_cancel_regular_order(fake: FakeKite, broker: KiteBroker) -> None:
    order = await broker.place_order(req())
    cancelled = await broker.cancel_order(order.order_id)
    assert cancelled.status is OrderStatus.CANCELLED
    with pytest.raises(OrderRejected, match="cannot be modified"):
        await broker.modify_order(order.order_id, OrderChange(quantity=1))


async def test_cancel_unknown_order(broker: KiteBroker) -> None:
    with pytest.raises(OrderNotFound):
        await broker.cancel_order("999")


async def test_after_hours_orders_go_in_as_amo_and_can_be_modified_and_cancelled(
    fake: FakeKite, clock: ManualClock
) -> None:
    clock.set(AFTER_HOURS)
    broker = make_broker(fake, clock)
    order = await broker.place_order(req(OrderType.MARKET, Product.CNC))
    sent = fake.orders[order.order_id]
    assert (sent["variety"], sent["status"], sent["market_protection"]) == (
        "amo",
        "AMO REQ RECEIVED",
        -1,
    )
    limit = await broker.place_order(req())
    assert fake.orders[limit.order_id]["variety"] == "amo"
    # A fresh adapter (after a restart) learns the variety from Kite before modifying.
    fresh = make_broker(fake, clock)
    modified = await fresh.modify_order(limit.order_id, OrderChange(price=Decimal("1560")))
    assert modified.status is OrderStatus.OPEN and modified.request.price == Decimal("1560")
    cancelled = await fresh.cancel_order(limit.order_id)
    assert cancelled.status is OrderStatus.CANCELLED


async def test_explicit_variety_overrides_the_clock(fake: FakeKite, broker: KiteBroker) -> None:
    order = await broker.place_order(req(), variety="amo")
    assert fake.orders[order.order_id]["variety"] == "amo"


async def test_mcx_is_never_switched_to_amo(fake: FakeKite, clock: ManualClock) -> None:
    clock.set(AFTER_HOURS)
    broker = make_broker(fake, clock)
    order = await broker.place_order(
        OrderRequest(
            "MCX:GOLDPETALFUT", Side.SELL, 1, OrderType.LIMIT, Product.NRML, price=Decimal("7401")
        )
    )
    assert fake.orders[order.order_id]["variety"] == "regular"


async def test_kite_side_rejection_shows_in_the_order_state(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(
        OrderRequest(
            "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1570.15")
        )
    )
    state = await broker.order(order.order_id)
    assert state.status is OrderStatus.REJECTED
    assert "tick size" in state.status_message.lower()


# -- never a blind retry ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "attempts"),
    [
        ("timeout_before", 2),  # Kite never saw it: one retry places it once
        ("drop_before", 2),
        ("timeout_after", 1),  # Kite recorded it: found by tag, not placed again
        ("drop_after", 1),
        ("500_html", 2),  # gateway page before the OMS: outcome unknown, not recorded
    ],
)
async def test_lost_placement_answer_ends_with_exactly_one_order(
    fake: FakeKite, broker: KiteBroker, fault: str, attempts: int
) -> None:
    fake.inject("place", fault)
    order = await broker.place_order(req())
    live = fake.live_orders()
    assert len(live) == 1
    assert live[0]["order_id"] == order.order_id
    assert live[0]["tag"] == order.request.tag
    assert broker.placement_attempts == attempts


async def test_two_lost_answers_before_recording_end_without_an_order(
    fake: FakeKite, broker: KiteBroker
) -> None:
    fake.inject("place", "drop_before")
    fake.inject("place", "drop_before")
    with pytest.raises(OutcomeUnknown, match="not placed"):
        await broker.place_order(req())
    assert fake.live_orders() == []
    assert broker.placement_attempts == 2


async def test_unreadable_order_book_stops_the_retry(fake: FakeKite, broker: KiteBroker) -> None:
    fake.inject("place", "timeout_after")
    for _ in range(3):
        fake.inject("orders", "500_html")
    with pytest.raises(OutcomeUnknown, match="check the order book"):
        await broker.place_order(req())
    assert len(fake.live_orders()) == 1  # the recorded one, and no second placement
    assert broker.placement_attempts == 1


async def test_order_book_read_recovers_on_a_later_attempt(
    fake: FakeKite, broker: KiteBroker
) -> None:
    fake.inject("place", "drop_after")
    fake.inject("orders", "503")
    order = await broker.place_order(req())
    assert [o["order_id"] for o in fake.live_orders()] == [order.order_id]


async def test_rate_limited_placement_is_not_retried(fake: FakeKite, broker: KiteBroker) -> None:
    fake.inject("place", "429")
    with pytest.raises(RateLimited):
        await broker.place_order(req())
    assert fake.live_orders() == []
    assert broker.placement_attempts == 1


# -- throttle --------------------------------------------------------------------------------


async def _advance_sleep(clock: ManualClock, waits: list[float], seconds: float) -> None:
    waits.append(seconds)
    clock.advance(seconds)


def throttle(clock: ManualClock, waits: list[float], **kwargs: float) -> OrderThrottle:
    async def sleep(seconds: float) -> None:
        await _advance_sleep(clock, waits, seconds)

    return OrderThrottle.for_limits(LIMITS, clock, broker="Kite", sleep=sleep, **kwargs)


async def test_throttle_spaces_a_burst_at_eight_a_second(clock: ManualClock) -> None:
    waits: list[float] = []
    t = throttle(clock, waits)
    start = clock.now()
    for _ in range(24):
        await t.acquire()
    assert waits == pytest.approx([1.0, 1.0])  # 8 at t0, 8 at t0+1, 8 at t0+2
    assert (clock.now() - start).total_seconds() == pytest.approx(2.0)


async def test_throttle_holds_back_the_351st_order_of_a_minute(clock: ManualClock) -> None:
    waits: list[float] = []
    t = throttle(clock, waits, max_wait=5.0)
    for _ in range(350):
        await t.acquire()
    elapsed = sum(waits)
    assert elapsed < 60  # 350 orders at 8/s fit in the minute
    with pytest.raises(ThrottleLimited, match="350 orders a minute") as info:
        await t.acquire()
    assert info.value.rule == "throttle"
    clock.advance(60)
    assert await t.acquire() == 0.0


async def test_throttle_daily_limit_and_reset_next_day(clock: ManualClock) -> None:
    t = OrderThrottle(clock, per_day=3)
    for _ in range(3):
        t.reserve()
        clock.advance(1)
    with pytest.raises(ThrottleLimited, match="3 orders already sent today"):
        t.reserve()
    clock.set(datetime(2026, 11, 26, 9, 15, tzinfo=IST))
    assert t.reserve() == 0.0


async def test_throttled_order_never_reaches_kite(fake: FakeKite, clock: ManualClock) -> None:
    two_a_second = OrderThrottle(clock, windows=(RateWindow(2, 1.0),), max_wait=0.5)
    broker = make_broker(fake, clock, throttle=two_a_second)
    await broker.place_order(req())
    await broker.place_order(req())
    with pytest.raises(ThrottleLimited, match="2 orders a second"):
        await broker.place_order(req())
    assert len(fake.live_orders()) == 2


# -- snapshots --------------------------------------------------------------------------------


async def test_partial_fill_then_complete_shows_in_orders_fills_and_positions(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(req(quantity=10))
    fake.fill(order.order_id, 4, "1570.1")
    (snapshot,) = await broker.orders()
    assert snapshot.status is OrderStatus.PARTIALLY_FILLED
    assert (snapshot.filled_quantity, snapshot.pending_quantity) == (4, 6)
    fake.fill(order.order_id, 6, "1569.9")
    (snapshot,) = await broker.orders()
    assert snapshot.status is OrderStatus.FILLED
    assert snapshot.average_price == Decimal("1569.98")
    fills = await broker.fills()
    assert [(f.quantity, f.price) for f in fills] == [
        (4, Decimal("1570.1")),
        (6, Decimal("1569.9")),
    ]
    assert all(f.order_id == order.order_id and f.ts.tzinfo is not None for f in fills)
    (position,) = await broker.positions()
    assert (position.key, position.product, position.quantity) == ("NSE:INFY", Product.CNC, 10)
    assert position.average_price == Decimal("1569.98")


async def test_holdings_and_funds(fake: FakeKite, broker: KiteBroker) -> None:
    (holding,) = await broker.holdings()
    assert (holding.key, holding.quantity) == ("NSE:SBIN", 12)  # 10 settled + 2 T1
    assert holding.average_price == Decimal("701.5")
    before = await broker.funds()
    assert before.available_cash == Decimal("250000.00")
    await broker.place_order(req(OrderType.MARKET, key="NSE:SBIN", quantity=10))
    after = await broker.funds()
    assert after.margin_used == Decimal("8124.00")
    assert after.available_cash == Decimal("241876.00")


async def test_quotes_ltp_instruments_and_history(fake: FakeKite, broker: KiteBroker) -> None:
    quotes = await broker.quote(["NSE:INFY", "CDS:USDINRFUT"])
    assert quotes["NSE:INFY"].last_price == Decimal("1573.7")
    assert quotes["NSE:INFY"].depth is not None and len(quotes["NSE:INFY"].depth.bids) == 5
    assert (await broker.ltp(["CDS:USDINRFUT"]))["CDS:USDINRFUT"] == Decimal("84.125")
    master = await broker.instruments()
    by_key = {i.key: i for i in master.instruments}
    assert by_key["NFO:NIFTYFUT"].lot_size == 75
    assert by_key["CDS:USDINRFUT"].tick_size == Decimal("0.0025")
    assert by_key["NFO:NIFTYFUT"].expiry is not None
    assert master.skipped == {"exchange BCD": 1}
    start = datetime(2026, 11, 23, 9, 15, tzinfo=IST)  # a Monday (the 24th is a holiday)
    bars = await broker.history(
        "NSE:INFY", 408065, Timeframe.M5, start, start + timedelta(minutes=25)
    )
    assert [b.start for b in bars] == [start + timedelta(minutes=5 * i) for i in range(6)]
    assert all(b.closed and b.high >= max(b.open, b.close) for b in bars)


async def test_login_round_trip(fake: FakeKite, broker: KiteBroker) -> None:
    url = broker.login_url()
    assert url.startswith(f"{fake.base_url}/connect/login?api_key={fake.api_key}")
    answer = await asyncio.to_thread(requests.get, url, allow_redirects=False, timeout=5)
    assert answer.status_code == 302
    location = answer.headers["Location"]
    assert "status=success" in location
    request_token = location.split("request_token=")[1].split("&")[0]
    token = await broker.create_session(request_token, fake.api_secret)
    assert token in fake.access_tokens and broker.access_token == token
    assert (await broker.profile())["user_id"] == "AB1234"
