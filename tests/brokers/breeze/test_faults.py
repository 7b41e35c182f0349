"""The fault matrix against the fake: lost answers resolved by tag, the daily-limit reply,
session expiry (REST and stream), a gateway page, and a dropped stream."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from decimal import Decimal

import pytest

from services.brokers.breeze.instruments import SecurityMaster
from services.brokers.errors import OutcomeUnknown, RateLimited, SessionExpired
from services.brokers.ports import FeedMode
from services.bus import CONNECTION, TICKS
from services.domain import (
    ConnectionStatus,
    OrderRequest,
    OrderStatus,
    OrderType,
    Product,
    Side,
    Tick,
)
from tests.brokers.breeze.conftest import Rig


def buy(tag: str) -> OrderRequest:
    return OrderRequest(
        "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1500.00"), tag=tag
    )


async def until(check: Callable[[], bool], within: float = 10.0) -> bool:
    end = time.monotonic() + within
    while time.monotonic() < end:
        if check():
            return True
        await asyncio.sleep(0.02)
    return False


@pytest.mark.parametrize(
    ("fault", "sends", "status"),
    [
        ("timeout_after", 1, OrderStatus.OPEN),  # recorded, answer late: found by tag
        ("drop_after", 1, OrderStatus.OPEN),  # recorded, connection cut: found by tag
        ("500_html", 2, OrderStatus.PENDING),  # the gateway never passed it on: sent again
    ],
)
async def test_a_lost_answer_is_resolved_by_tag_without_a_duplicate(
    rig: Rig, fault: str, sends: int, status: OrderStatus
) -> None:
    broker = await rig.execution()
    rig.fake.inject("place", fault)
    order = await broker.place_order(buy("LOST1"))
    assert order.request.tag == "LOST1" and order.status is status
    assert [o["user_remark"] for o in rig.fake.placed()] == ["LOST1"]  # exactly one
    assert broker.placement_attempts == sends


async def test_a_send_that_never_arrived_is_placed_once_more(rig: Rig) -> None:
    broker = await rig.execution()
    rig.fake.inject("place", "timeout_before")  # hangs *before* recording: nothing placed
    order = await broker.place_order(buy("RETRY1"))
    assert broker.placement_attempts == 2
    assert [o["user_remark"] for o in rig.fake.placed()] == ["RETRY1"]
    assert order.order_id == rig.fake.placed()[0]["order_id"]


async def test_an_unreadable_order_book_leaves_the_outcome_unknown(rig: Rig) -> None:
    broker = await rig.execution(lookup_attempts=2)
    rig.fake.inject("place", "timeout_after")
    rig.fake.inject("orders", "500_html")
    rig.fake.inject("orders", "500_html")
    with pytest.raises(OutcomeUnknown, match="LOST2"):
        await broker.place_order(buy("LOST2"))
    assert len(rig.fake.placed()) == 1  # recorded at ICICI; we said we do not know


async def test_the_daily_limit_reply_is_rate_limited_until_midnight(rig: Rig) -> None:
    broker = await rig.execution()
    rig.fake.inject("place", "limit")
    with pytest.raises(RateLimited, match="5,000") as caught:
        await broker.place_order(buy("LIMIT1"))
    # 10:00 IST: fourteen hours to midnight, when ICICI's count starts again.
    assert caught.value.retry_after == pytest.approx(14 * 3600)
    assert rig.fake.placed() == []
    rig.fake.daily_limit = rig.fake.calls_today  # the real cap, reached by the fake
    with pytest.raises(RateLimited):
        await broker.funds()


async def test_session_expiry_asks_for_a_login_and_a_new_login_recovers(rig: Rig) -> None:
    broker = await rig.execution()
    await broker.funds()
    rig.fake.expire_session()
    with pytest.raises(SessionExpired, match="dalal login breeze"):
        await broker.funds()
    assert rig.expired_calls == 1
    broker.use_token(await rig.login())
    assert (await broker.funds()).opening_balance == Decimal(500000)


async def test_the_stream_drops_and_comes_back_with_every_subscription(rig: Rig) -> None:
    await rig.login()
    parts = rig.parts()
    assert parts.instruments is not None and parts.feed is not None
    master = await parts.instruments.fetch_master()
    assert isinstance(master, SecurityMaster)
    rig.bus.bind_loop(asyncio.get_running_loop())
    ticks = rig.bus.subscribe(TICKS, "test", lossless=True)
    states = rig.bus.subscribe(CONNECTION, "test-states", lossless=True)
    feed = parts.feed(master)
    feed.subscribe(["NSE:RELIANCE"], FeedMode.QUOTE)
    feed.subscribe(["NSE:INFY"], FeedMode.FULL)
    feed.start()
    try:
        wanted = {"4.1!2885", "4.1!1594", "4.2!1594"}
        assert await until(lambda: rig.fake.subscribed_tokens(newest_only=True) == wanted)
        got: dict[str, Tick] = {}
        for _ in range(3):  # a depth list before the first quote waits for it: push again
            rig.fake.push_ticks()
            await asyncio.sleep(0.2)
            got.update((t.key, t) for t in ticks.drain())
        assert got["NSE:RELIANCE"].last_price == Decimal("2950.4")
        assert got["NSE:INFY"].depth is not None  # FULL: quote and depth joined
        rig.fake.drop_sockets()
        assert await until(lambda: feed.status().connects == 2)
        assert await until(lambda: rig.fake.subscribed_tokens(newest_only=True) == wanted, 1.0)
        seen = [s.status for s in states.drain()]
        assert ConnectionStatus.DISCONNECTED in seen and seen[-1] is ConnectionStatus.CONNECTED
        # The session ends: the stream's connect is refused, the app is told, no retry storm.
        rig.fake.expire_session()
        rig.fake.drop_sockets()
        assert await until(lambda: rig.expired_calls == 1)
        refusals = rig.fake.socket_refusals
        await asyncio.sleep(1.0)
        assert rig.fake.socket_refusals == refusals  # waits for a new session
        parts.use_token(await rig.login())
        assert await until(lambda: feed.status().connected and feed.status().connects == 3)
    finally:
        await feed.stopped()  # type: ignore[attr-defined]
