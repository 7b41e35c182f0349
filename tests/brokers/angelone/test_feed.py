"""SmartWebSocketV2 (the real SDK socket) streaming from the fake into the event bus.

Waits are on events with generous deadlines (the machine is shared); nothing sleeps a
fixed time to pass.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from services.brokers.angelone.feed import AngelFeed
from services.brokers.errors import CapacityExceeded, InstrumentUnknown
from services.bus import CONNECTION, TICKS, EventBus
from services.domain import ConnectionStatus, Tick
from tests.brokers.angelone.conftest import endpoints_for, instruments_for, tokens_for
from tests.fakes.angelone import FakeAngel, ScripRow, default_scrips

DEADLINE = 20.0


async def until(condition: Callable[[], object], what: str, within: float = DEADLINE) -> None:
    end = time.monotonic() + within
    while not condition():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def bus() -> EventBus:
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    return bus


def make_feed(fake: FakeAngel, bus: EventBus, **kw: object) -> AngelFeed:
    return AngelFeed(
        fake.api_key,
        tokens_for(fake),
        instruments_for(fake),
        bus,
        endpoints=endpoints_for(fake),
        loop=asyncio.get_running_loop(),
        **kw,  # type: ignore[arg-type]
    )


@pytest.fixture
async def feed(fake: FakeAngel, bus: EventBus) -> AsyncIterator[AngelFeed]:
    feed = make_feed(fake, bus)
    yield feed
    await asyncio.to_thread(feed.stop)


async def test_ticks_in_every_mode_reach_the_bus(
    fake: FakeAngel, bus: EventBus, feed: AngelFeed
) -> None:
    sub = bus.subscribe(TICKS, "test", lossless=True)
    feed.subscribe(["NSE:SBIN"], "full")
    feed.subscribe(["NSE:INFY"], "ltp")
    feed.subscribe(["NFO:NIFTY30DEC26FUT"], "quote")
    feed.start()
    seen: dict[str, Tick] = {}
    end = time.monotonic() + DEADLINE
    while len(seen) < 3 and time.monotonic() < end:
        for tick in await asyncio.wait_for(sub.next_batch(), DEADLINE):
            seen[tick.key] = tick
    assert set(seen) == {"NSE:SBIN", "NSE:INFY", "NFO:NIFTY30DEC26FUT"}
    sbin = seen["NSE:SBIN"]
    assert sbin.last_price == Decimal("812.40") and sbin.depth is not None
    assert sbin.depth.best_bid is not None and sbin.depth.best_bid.price == Decimal("812.35")
    assert seen["NSE:INFY"].depth is None and seen["NSE:INFY"].volume == 0
    assert seen["NFO:NIFTY30DEC26FUT"].close == Decimal("24207.15")
    modes = fake.subscriptions()[0]
    assert modes == {(1, "3045"): 3, (1, "1594"): 1, (2, "43650"): 2}
    assert feed.subscriptions() == {
        "NSE:SBIN": "full",
        "NSE:INFY": "ltp",
        "NFO:NIFTY30DEC26FUT": "quote",
    }


async def test_mode_change_and_unsubscribe_reach_the_server(
    fake: FakeAngel, feed: AngelFeed
) -> None:
    feed.subscribe(["NSE:SBIN", "NSE:TCS"], "quote")
    feed.start()
    await until(lambda: fake.subscriptions() and len(fake.subscriptions()[0]) == 2, "subscribe")
    feed.subscribe(["NSE:SBIN"], "ltp")
    await until(lambda: fake.subscriptions()[0].get((1, "3045")) == 1, "mode change")
    feed.unsubscribe(["NSE:TCS", "NSE:NOTSUBSCRIBED"])
    await until(lambda: (1, "11536") not in fake.subscriptions()[0], "unsubscribe")
    assert feed.subscriptions() == {"NSE:SBIN": "ltp"}


async def test_text_heartbeat_is_sent_and_answered(fake: FakeAngel, feed: AngelFeed) -> None:
    feed.ping_every = 0.2
    feed.subscribe(["NSE:SBIN"], "ltp")
    feed.start()
    await until(lambda: fake.ws_texts.count("ping") >= 2, "two text pings")
    assert feed.snapshot().connected and not feed.snapshot().stale


async def test_socket_drop_reconnects_and_resubscribes_quickly(
    fake: FakeAngel, bus: EventBus, feed: AngelFeed
) -> None:
    states = bus.subscribe(CONNECTION, "states", lossless=True)
    feed.subscribe(["NSE:SBIN"], "full")
    feed.subscribe(["NSE:INFY"], "quote")
    feed.start()
    await until(lambda: feed.connected and fake.subscriptions(), "first connection")
    assert fake.drop_sockets() == 1
    dropped = time.monotonic()
    await until(lambda: fake.ws_connects >= 2, "reconnect")
    await until(lambda: fake.subscriptions() == [{(1, "3045"): 3, (1, "1594"): 2}], "resubscribe")
    # Backoff starts at 0.2 s: back and resubscribed well inside a second on a quiet box;
    # the generous bound is for a loaded CI machine.
    assert time.monotonic() - dropped < 5.0
    assert feed.connects >= 2
    seen = [s.status for s in states.drain()]
    assert ConnectionStatus.CONNECTED in seen and ConnectionStatus.CONNECTING in seen


async def test_silent_feed_is_detected_and_reconnected(fake: FakeAngel, feed: AngelFeed) -> None:
    feed.ping_every = 0.2
    feed.stale_after = 1.0
    feed.subscribe(["NSE:SBIN"], "ltp")
    feed.start()
    await until(lambda: feed.connected, "connection")
    fake.answer_ping = False  # the server goes quiet but keeps the TCP connection
    silent_from = time.monotonic()
    await until(lambda: fake.ws_connects >= 2, "reconnect after silence")
    assert time.monotonic() - silent_from < 1.0 + DEADLINE / 4
    fake.answer_ping = True
    await until(lambda: fake.subscriptions() == [{(1, "3045"): 1}], "resubscribed")


async def test_capacity_is_enforced_and_connections_are_pooled(bus: EventBus) -> None:
    scrips = default_scrips() + [
        ScripRow(str(50000 + i), f"X{i}-EQ", f"X{i}", "NSE") for i in range(7)
    ]
    with FakeAngel(tokens_per_connection=4, scrips=scrips) as fake:
        feed = make_feed(fake, bus, per_connection=4, max_connections=2)
        try:
            keys = [f"NSE:X{i}" for i in range(7)]
            feed.subscribe(keys[:3], "ltp")
            feed.start()
            feed.subscribe(keys[3:], "ltp")  # 7 keys: one full connection and a second
            await until(lambda: len(fake.subscriptions()) == 2, "two connections")
            await until(lambda: sorted(len(s) for s in fake.subscriptions()) == [3, 4], "spread")
            assert fake.ws_errors_sent == []  # never past the server's own limit
            with pytest.raises(CapacityExceeded, match="7 are subscribed and 2 more"):
                feed.subscribe(["NSE:SBIN", "NSE:TCS"], "quote")
            assert "NSE:SBIN" not in feed.subscriptions()  # nothing was subscribed
            with pytest.raises(InstrumentUnknown):
                feed.subscribe(["NSE:NOSUCH"])
            feed.subscribe(["NSE:SBIN"], "quote")  # exactly the last free slot
            with pytest.raises(CapacityExceeded, match="at most 8 instruments"):
                feed.subscribe(["NSE:NOSUCH"])  # capacity is checked before the key
        finally:
            await asyncio.to_thread(feed.stop)


async def test_refused_token_does_not_spin(fake: FakeAngel, bus: EventBus) -> None:
    refused: list[int] = []
    feed = make_feed(fake, bus, on_session_rejected=lambda: refused.append(1))
    fake.expire_sessions()
    feed.subscribe(["NSE:SBIN"])
    feed.start()
    try:
        await until(lambda: refused, "session refusal")
        await asyncio.sleep(1.0)
        assert fake.ws_refused <= 3  # backed off to the maximum delay, not retrying hot
        # A new login hands the feed its tokens: it reconnects at once, not after the backoff.
        feed.set_tokens(tokens_for(fake))
        woke = time.monotonic()
        await until(lambda: feed.connected, "reconnection with the new session", within=8.0)
        assert time.monotonic() - woke < 8.0
        await until(lambda: fake.subscriptions() == [{(1, "3045"): 2}], "resubscribed")
    finally:
        await asyncio.to_thread(feed.stop)
