"""The event bus: coalescing for views, lossless delivery for the order path, no stalls."""

import asyncio
from datetime import datetime
from decimal import Decimal

import pytest

from services.bus import ORDERS, TICKS, EventBus, SubscriberLagged, Topic
from services.clock import IST
from services.domain import Tick


def tick(key: str, price: str, n: int = 0) -> Tick:
    p = Decimal(price)
    return Tick(key, datetime(2026, 11, 25, 10, 0, n, tzinfo=IST), p, 1, n, p, p, p, p)


def test_view_subscription_keeps_only_the_newest_tick_per_instrument() -> None:
    bus = EventBus()
    view = bus.subscribe(TICKS, "chart")
    for i in range(1000):
        bus.publish(TICKS, tick("NSE:INFY", f"{1500 + i}", i % 60))
        bus.publish(TICKS, tick("NSE:TCS", f"{3000 + i}", i % 60))
    batch = view.drain()
    assert [(t.key, t.last_price) for t in batch] == [
        ("NSE:INFY", Decimal(2499)),
        ("NSE:TCS", Decimal(3999)),
    ]
    assert view.coalesced_away == 1998


def test_lossless_subscription_on_a_coalescing_topic_gets_every_tick_in_order() -> None:
    bus = EventBus()
    bars = bus.subscribe(TICKS, "bars", lossless=True)
    prices = [f"{100 + i}" for i in range(50)]
    for p in prices:
        bus.publish(TICKS, tick("NSE:INFY", p))
    assert [str(t.last_price) for t in bars.drain()] == prices


def test_a_slow_lossless_subscriber_is_told_to_resync_and_never_blocks_the_publisher() -> None:
    bus = EventBus()
    topic: Topic[int] = Topic("test", maxsize=100)
    slow = bus.subscribe(topic, "slow")
    fast = bus.subscribe(topic, "fast")
    for i in range(150):
        bus.publish(topic, i)
        if i % 10 == 9:
            assert len(fast.drain()) == 10  # the fast one is unaffected by the slow one
    with pytest.raises(SubscriberLagged):
        slow.drain()
    bus.publish(topic, 999)
    assert slow.drain() == [999]  # after the resync signal it receives new events again


async def test_next_batch_waits_for_events_published_later() -> None:
    bus = EventBus()
    sub = bus.subscribe(ORDERS, "blotter")
    waiter = asyncio.create_task(sub.next_batch())
    await asyncio.sleep(0)
    assert not waiter.done()
    bus.publish(ORDERS, "order-1")  # type: ignore[arg-type]
    assert await asyncio.wait_for(waiter, 1) == ["order-1"]


async def test_publish_threadsafe_delivers_on_the_loop() -> None:
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    sub = bus.subscribe(TICKS, "view")
    await asyncio.to_thread(bus.publish_threadsafe, TICKS, tick("NSE:SBIN", "950"))
    batch = await asyncio.wait_for(sub.next_batch(), 1)
    assert batch[0].key == "NSE:SBIN"


def test_closed_subscription_receives_nothing() -> None:
    bus = EventBus()
    sub = bus.subscribe(TICKS, "view")
    sub.close()
    bus.publish(TICKS, tick("NSE:SBIN", "950"))
    assert bus.subscriber_count(TICKS) == 0
    assert sub.pending() == 0


def test_a_batch_fills_a_lossless_mailbox_to_the_brim_without_lagging() -> None:
    bus = EventBus()
    small: Topic[Tick] = Topic("small", coalesce_key=lambda t: t.key, maxsize=100)
    sub = bus.subscribe(small, "recorder", lossless=True)
    bus.publish_many(small, [tick("NSE:INFY", f"{100 + i}") for i in range(60)])
    bus.publish_many(small, [tick("NSE:INFY", f"{200 + i}") for i in range(40)])  # exactly full
    batch = sub.drain()
    assert len(batch) == 100 and bus.lagged == {}
    assert [str(t.last_price) for t in batch[58:62]] == ["158", "159", "200", "201"]


def test_a_batch_that_overflows_marks_one_lag_and_the_subscriber_goes_on() -> None:
    bus = EventBus()
    small: Topic[Tick] = Topic("small", coalesce_key=lambda t: t.key, maxsize=100)
    sub = bus.subscribe(small, "bars", lossless=True)
    bus.publish_many(small, [tick("NSE:INFY", "1")] * 90)
    bus.publish_many(small, [tick("NSE:INFY", "2")] * 20)  # 10 fit, the 11th overflows
    bus.publish_many(small, [tick("NSE:INFY", "3")] * 5)  # superseded by the resync too
    assert bus.lagged == {"bars": 1}
    with pytest.raises(SubscriberLagged):
        sub.drain()
    bus.publish_many(small, [tick("NSE:INFY", "4")] * 3)
    assert [str(t.last_price) for t in sub.drain()] == ["4", "4", "4"]
    assert bus.lagged == {"bars": 1}


def test_accept_keeps_unwanted_events_out_of_the_mailbox() -> None:
    bus = EventBus()
    small: Topic[Tick] = Topic("small", coalesce_key=lambda t: t.key, maxsize=10)
    infy = bus.subscribe(small, "infy-only", lossless=True, accept=lambda t: t.key == "NSE:INFY")
    everything = bus.subscribe(small, "view")
    bus.publish_many(small, [tick("NSE:TCS", "1")] * 50 + [tick("NSE:INFY", "2")])
    bus.publish(small, tick("NSE:TCS", "3"))
    assert [t.key for t in infy.drain()] == ["NSE:INFY"]  # fifty others never filled it
    assert bus.lagged == {}
    assert [(t.key, str(t.last_price)) for t in everything.drain()] == [
        ("NSE:INFY", "2"),
        ("NSE:TCS", "3"),
    ]


def test_a_late_view_starts_from_the_connection_states_already_published() -> None:
    from services.bus import CONNECTION
    from services.domain import ConnectionState, ConnectionStatus

    bus = EventBus()
    at = datetime(2026, 11, 25, 9, 0, tzinfo=IST)
    bus.publish(CONNECTION, ConnectionState("feed:angelone", ConnectionStatus.CONNECTING, "", at))
    bus.publish(CONNECTION, ConnectionState("broker:paper", ConnectionStatus.CONNECTED, "", at))
    bus.publish(CONNECTION, ConnectionState("feed:angelone", ConnectionStatus.CONNECTED, "", at))
    late = bus.subscribe(CONNECTION, "status-bar", replay=True)
    assert [(s.component, s.status) for s in late.drain()] == [
        ("feed:angelone", ConnectionStatus.CONNECTED), ("broker:paper", ConnectionStatus.CONNECTED)]
    # Only a view that asks for the replay gets it; ticks are never retained.
    assert bus.subscribe(CONNECTION, "reconciler").drain() == []
    bus.publish(TICKS, tick("NSE:INFY", "1500"))
    assert bus.latest(TICKS) == [] and bus.subscribe(TICKS, "chart", replay=True).drain() == []


def test_a_full_keep_backlog_mailbox_keeps_what_it_holds_and_refuses_the_excess() -> None:
    # The recorder's mailbox: no snapshot to resync from, so an overflow must not throw away
    # the ticks already queued (the plain lossless mailbox clears them).
    bus = EventBus()
    small: Topic[Tick] = Topic("small", coalesce_key=lambda t: t.key, maxsize=100)
    sub = bus.subscribe(small, "recorder", lossless=True, keep_backlog=True)
    plain = bus.subscribe(small, "bars", lossless=True)
    bus.publish_many(small, [tick("NSE:INFY", "1")] * 90)
    bus.publish_many(small, [tick("NSE:INFY", "2")] * 20)  # 10 fit, 10 refused
    bus.publish(small, tick("NSE:INFY", "3"))  # refused
    assert bus.lagged == {"recorder": 1, "bars": 1}
    assert (sub.dropped, plain.dropped) == (11, 111)
    with pytest.raises(SubscriberLagged):
        sub.drain()
    kept = sub.drain()
    assert [str(t.last_price) for t in kept] == ["1"] * 90 + ["2"] * 10
    bus.publish(small, tick("NSE:INFY", "4"))
    assert [str(t.last_price) for t in sub.drain()] == ["4"]
    assert sub.delivered + sub.dropped == 112


async def test_a_keep_backlog_reader_is_woken_for_what_it_kept_after_the_lag() -> None:
    bus = EventBus()
    small: Topic[Tick] = Topic("small", coalesce_key=lambda t: t.key, maxsize=3)
    sub = bus.subscribe(small, "recorder", lossless=True, keep_backlog=True)
    bus.publish_many(small, [tick("NSE:INFY", "1")] * 5)
    with pytest.raises(SubscriberLagged):
        await sub.next_batch()
    assert len(await asyncio.wait_for(sub.next_batch(), 5)) == 3
