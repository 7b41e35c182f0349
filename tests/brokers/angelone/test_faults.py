"""The fault matrix: what the trader sees and what reaches Angel when things go wrong.

Every fault is injected in the fake server; the adapter drives the real SDK through it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

import pytest

from services.brokers.angelone.execution import AngelExecution
from services.brokers.errors import (
    BrokerUnavailable,
    IpNotAllowed,
    OutcomeUnknown,
    RateLimited,
    SessionExpired,
)
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side
from tests.brokers.angelone.conftest import make_execution
from tests.fakes.angelone import FakeAngel


def limit(tag: str) -> OrderRequest:
    return OrderRequest(
        "NSE:SBIN", Side.BUY, 5, OrderType.LIMIT, Product.CNC, price=Decimal("800.05"), tag=tag
    )


async def test_timeout_after_send_is_resolved_by_tag_without_a_duplicate(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "timeout_after")
    order = await execution.place_order(limit("LOST1"))
    assert order.request.tag == "LOST1"
    assert order.status is OrderStatus.OPEN  # as found in the order book
    assert fake.count("placeOrder") == 1
    assert len(fake.orders) == 1
    assert fake.count("getOrderBook") >= 1


async def test_dropped_connection_after_send_is_resolved_by_tag(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "drop_after")
    order = await execution.place_order(limit("DROP1"))
    assert order.order_id in fake.orders and len(fake.orders) == 1


async def test_timeout_before_recording_places_once_more_with_the_same_tag(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "timeout_before")
    order = await execution.place_order(limit("RETRY1"))
    assert fake.count("placeOrder") == 2
    assert [o["ordertag"] for o in fake.orders.values()] == ["RETRY1"]
    assert order.order_id in fake.orders


async def test_two_lost_answers_and_no_order_is_outcome_unknown(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "timeout_before")
    fake.inject("placeOrder", "timeout_before")
    with pytest.raises(OutcomeUnknown, match="not placed"):
        await execution.place_order(limit("GONE1"))
    assert fake.orders == {}


async def test_gateway_page_on_placement_is_resolved_like_a_timeout(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "html")
    await execution.place_order(limit("HTML1"))
    assert fake.count("placeOrder") == 2 and len(fake.orders) == 1


async def test_rate_limit_403_is_rate_limited_and_nothing_is_retried(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "rate_limit")
    with pytest.raises(RateLimited, match="rate limit") as caught:
        await execution.place_order(limit("RL1"))
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert fake.count("placeOrder") == 1 and fake.orders == {}
    fake.inject("getOrderBook", "rate_limit")
    with pytest.raises(RateLimited):
        await execution.orders()


async def test_real_burst_over_nine_a_second_meets_angels_403(fake: FakeAngel) -> None:
    """Without our throttle the fake's own per-second limit answers 403 -> RateLimited.

    The fake's limit is lowered to 2 a second so that a loaded machine, where 14 requests
    may take longer than a second, still exceeds it."""
    fake.enforce_order_limit = True
    fake.orders_per_second = 2
    execution = make_execution(fake)
    results = await asyncio.gather(
        *(execution.place_order(limit(f"B{i}")) for i in range(14)), return_exceptions=True
    )
    limited = [r for r in results if isinstance(r, RateLimited)]
    assert limited, "a burst of 14 should exceed 2 a second"
    assert all(not isinstance(r, Exception) or isinstance(r, RateLimited) for r in results)


@pytest.mark.parametrize("how", ["expired", "AB1010"])
async def test_session_expiry_is_session_expired_and_calls_back(fake: FakeAngel, how: str) -> None:
    calls: list[int] = []
    execution = make_execution(fake, on_session_expired=lambda: calls.append(1))
    await execution.orders()
    if how == "expired":
        fake.expire_sessions()
    else:
        fake.inject("placeOrder", "session")
    with pytest.raises(SessionExpired, match="log in to Angel One again"):
        await execution.place_order(limit("SX1"))
    assert calls == [1]
    assert fake.orders == {}


async def test_static_ip_refusal(execution: AngelExecution, fake: FakeAngel) -> None:
    fake.inject("placeOrder", "ip")
    with pytest.raises(IpNotAllowed, match="IP address"):
        await execution.place_order(limit("IP1"))


async def test_unreadable_book_after_a_lost_answer_says_check_the_book(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("placeOrder", "timeout_after")
    for _ in range(3):
        fake.inject("getOrderBook", "html")
    with pytest.raises(OutcomeUnknown, match="check the order book for tag LB1"):
        await execution.place_order(limit("LB1"))
    assert len(fake.orders) == 1  # it was placed; we said we do not know, and did not resend


async def test_gateway_page_on_a_read_is_broker_unavailable(
    execution: AngelExecution, fake: FakeAngel
) -> None:
    fake.inject("getPosition", "html")
    with pytest.raises(BrokerUnavailable):
        await execution.positions()
