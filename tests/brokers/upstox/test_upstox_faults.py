"""The fault matrix for orders: lost answers resolved by tag, 429, 5xx, token expiry, and
the SEBI-era rejections (static IP, algo name, blocked market), all through the real SDK."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.broker import OrderRejected
from services.brokers.errors import (
    InvalidInput,
    IpNotAllowed,
    OutcomeUnknown,
    RateLimited,
    SessionExpired,
)
from services.brokers.upstox.execution import UpstoxExecution
from services.clock import ManualClock
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side
from tests.brokers.upstox.conftest import make_api, make_execution
from tests.fakes.upstox import FakeUpstox


def req(tag: str | None = None) -> OrderRequest:
    return OrderRequest(
        key="NSE:INFY",
        side=Side.BUY,
        quantity=1,
        order_type=OrderType.LIMIT,
        product=Product.CNC,
        price=Decimal("1570.10"),
        tag=tag,
    )


async def test_timeout_after_send_is_resolved_by_tag_without_a_duplicate(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "timeout_after")
    order = await execution.place_order(req("T1"))
    assert len(fake.orders_with_tag("T1")) == 1
    assert order.order_id == fake.orders_with_tag("T1")[0]["order_id"]
    assert order.status is OrderStatus.OPEN
    assert execution.placement_attempts == 1
    assert fake.journal.count("POST", "/v3/order/place") == 1


async def test_timeout_before_recording_places_exactly_once(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "timeout_before")
    order = await execution.place_order(req("T2"))
    assert [o["order_id"] for o in fake.orders_with_tag("T2")] == [order.order_id]
    assert execution.placement_attempts == 2


@pytest.mark.parametrize("fault", ["500", "503_html"])
async def test_server_errors_look_the_tag_up_then_place_once(
    fake: FakeUpstox, execution: UpstoxExecution, fault: str
) -> None:
    fake.inject("place", fault)
    order = await execution.place_order(req("T3"))
    assert [o["order_id"] for o in fake.orders_with_tag("T3")] == [order.order_id]
    assert fake.journal.count("GET", "/v2/order/retrieve-all") >= 1


async def test_twice_unanswered_and_absent_is_outcome_unknown_with_the_tag(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "timeout_before")
    fake.inject("place", "timeout_before")
    with pytest.raises(OutcomeUnknown, match="T4"):
        await execution.place_order(req("T4"))
    assert fake.orders_with_tag("T4") == []


async def test_unreadable_book_after_a_lost_answer_is_outcome_unknown(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "timeout_after")
    for _ in range(3):
        fake.inject("orders", "500")
    with pytest.raises(OutcomeUnknown, match="check the order book for tag T5"):
        await execution.place_order(req("T5"))
    assert len(fake.orders_with_tag("T5")) == 1  # it was placed; we said we do not know


async def test_429_is_rate_limited_with_a_retry_hint_and_nothing_placed(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "429")
    with pytest.raises(RateLimited) as caught:
        await execution.place_order(req("T6"))
    assert caught.value.retry_after == 1.0
    assert getattr(caught.value, "code", "") == "UDAPI10005"
    assert fake.orders_with_tag("T6") == []
    fake.inject("orders", "429")
    with pytest.raises(RateLimited):
        await execution.orders()


async def test_static_ip_refusal_says_what_to_do(
    fake: FakeUpstox, execution: UpstoxExecution
) -> None:
    fake.inject("place", "ip")
    with pytest.raises(IpNotAllowed) as caught:
        await execution.place_order(req())
    text = str(caught.value)
    assert "UDAPI1154" in text and "static IP" in text and "Register" in text
    assert isinstance(caught.value, OrderRejected)
    assert fake.orders == {}


async def test_algo_name_and_blocked_market_refusals(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    unknown_algo = make_execution(fake, clock, algo_name="not-registered")
    with pytest.raises(InvalidInput, match=r"UDAPI1156.*algo"):
        await unknown_algo.place_order(req())
    fake.inject("place", "blocked")
    with pytest.raises(OrderRejected, match=r"UDAPI1158.*blocked") as caught:
        await make_execution(fake, clock).place_order(req())
    assert caught.value.rule == "broker-market-blocked"


async def test_token_expiry_at_0330_raises_session_expired_and_calls_back(
    fake: FakeUpstox, clock: ManualClock
) -> None:
    expired: list[bool] = []
    api = make_api(fake, on_session_expired=lambda: expired.append(True))
    client = make_execution(fake, clock, api=api)
    await client.place_order(req())
    fake.expire_session()  # 03:30 IST: Upstox stops accepting the day's token
    with pytest.raises(SessionExpired, match="03:30"):
        await client.place_order(req())
    with pytest.raises(SessionExpired):
        await client.orders()
    assert expired == [True, True]
    assert len(fake.orders) == 1
