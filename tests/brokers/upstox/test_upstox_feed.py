"""Market Data Feed V3 end to end: the SDK's authorize call, our socket, protobuf frames from
the fake, ticks on the bus; reconnect, staleness, single-use URLs, caps and token expiry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from decimal import Decimal

import pytest

from services.broker import BrokerError
from services.brokers.errors import CapacityExceeded, InstrumentUnknown
from services.brokers.ports import FeedMode
from services.brokers.upstox.config import FEED_GREEKS_KEYS
from services.brokers.upstox.feed import UpstoxFeed
from services.bus import CONNECTION, GREEKS, TICKS, EventBus
from services.clock import ManualClock
from services.domain import ConnectionStatus, OptionGreeks, Tick
from tests.brokers.upstox.conftest import make_api, master_for
from tests.fakes.upstox import FakeUpstox

INFY, SBIN, NIFTY = "NSE:INFY", "NSE:SBIN", "NSE:NIFTY 50"
INFY_ID = "NSE_EQ|INE009A01021"


async def until(predicate: Callable[[], bool], within: float = 5.0) -> float:
    """Wait for ``predicate``; return how long it took (fail after ``within`` seconds)."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > within:
            raise AssertionError(f"condition not met within {within} s")
        await asyncio.sleep(0.01)
    return time.monotonic() - start


@pytest.fixture
async def bus() -> EventBus:
    return EventBus()


@pytest.fixture
async def feed(fake: FakeUpstox, clock: ManualClock, bus: EventBus) -> AsyncIterator[UpstoxFeed]:
    f = UpstoxFeed(
        make_api(fake, timeout=2.0),
        bus,
        master_for(fake, clock),
        backoff_initial=0.05,
        backoff_max=0.5,
        stale_after=1.5,
        ping_every=0.3,
        session_retry=0.2,
    )
    yield f
    await f.stopped()
    f.api.close()


async def ticks_for(sub: object, key: str, within: float = 5.0) -> list[Tick]:
    got: list[Tick] = []

    def seen() -> bool:
        got.extend(t for t in sub.drain() if t.key == key)  # type: ignore[attr-defined]
        return bool(got)

    await until(seen, within)
    return got


async def test_ticks_arrive_exact_in_each_mode(
    fake: FakeUpstox, feed: UpstoxFeed, bus: EventBus
) -> None:
    sub = bus.subscribe(TICKS, "test", lossless=True)
    feed.subscribe([INFY], FeedMode.FULL)
    feed.subscribe([SBIN], FeedMode.LTP)
    feed.subscribe([NIFTY], FeedMode.QUOTE)
    feed.start()
    await until(lambda: len(fake.subscribed()) == 3)
    assert fake.subscribed() == {INFY_ID: "full", "NSE_EQ|INE062A01020": "ltpc",
                                 "NSE_INDEX|Nifty 50": "full"}
    assert all(isinstance(r, dict) for r in fake.feed_requests)  # JSON in binary frames
    initial: set[str] = set()
    await until(lambda: initial.update(t.key for t in sub.drain()) or len(initial) == 3)
    fake.push(INFY_ID, "1575.35")
    (tick,) = await ticks_for(sub, INFY)
    assert tick.last_price == Decimal("1575.35")
    assert tick.close == Decimal("1565.35")
    assert tick.volume == 125_000
    assert tick.depth is not None and tick.depth.best_bid is not None
    assert tick.depth.best_bid.price == Decimal("1575.25")
    assert tick.ts.utcoffset() is not None and tick.ts.utcoffset().total_seconds() == 19800
    fake.push("NSE_EQ|INE062A01020", "812.45")
    (ltp,) = await ticks_for(sub, SBIN)
    assert ltp.last_price == Decimal("812.45") and ltp.depth is None
    assert feed.market_status.get("NSE_EQ") == "NORMAL_OPEN"
    assert feed.status().connected and feed.status().subscribed == 3


async def test_dropped_socket_reconnects_with_a_new_url_and_resubscribes_within_a_second(
    fake: FakeUpstox, feed: UpstoxFeed, bus: EventBus
) -> None:
    sub = bus.subscribe(TICKS, "test", lossless=True)
    feed.subscribe([INFY, SBIN], FeedMode.QUOTE)
    feed.start()
    await until(lambda: len(fake.subscribed()) == 2)
    fake.drop_feed()
    assert await until(lambda: fake.feed_connects == 2) < 5
    took = await until(lambda: len(fake.subscribed()) == 2)
    assert took < 1.0
    assert feed.authorizations == 2 and fake.refused_reused == 0
    fake.push(INFY_ID, "1580.00")
    await until(lambda: any(t.last_price == Decimal("1580") for t in sub.drain()))
    assert feed.status().connects == 2


async def test_a_silent_feed_is_detected_stale_within_three_seconds_and_redialled(
    fake: FakeUpstox, feed: UpstoxFeed, bus: EventBus
) -> None:
    states = bus.subscribe(CONNECTION, "test", lossless=True)
    feed.subscribe([INFY], FeedMode.LTP)
    feed.start()
    await until(lambda: feed.connected)
    fake.answer_pings = False  # the socket stays open but says nothing
    silent_since = time.monotonic()
    await until(lambda: feed.stale_drops == 1, within=6)
    assert time.monotonic() - silent_since < 3.0
    fake.answer_pings = True
    await until(lambda: fake.feed_connects == 2 and len(fake.subscribed()) == 1)
    stale = [s for s in states.drain() if "stale" in s.detail]
    assert stale and stale[0].status is ConnectionStatus.DISCONNECTED


async def test_a_reused_authorize_url_is_refused_and_a_fresh_one_is_fetched(
    fake: FakeUpstox, feed: UpstoxFeed
) -> None:
    feed.subscribe([INFY], FeedMode.LTP)
    feed.start()
    await until(lambda: feed.connected)
    fake.inject("feed-authorize", "reused")
    fake.drop_feed()
    await until(lambda: fake.feed_connects == 2 and len(fake.subscribed()) == 1)
    assert fake.refused_reused == 1
    assert feed.authorizations == 3  # connect, the stale URL (refused), a fresh one


async def test_capacity_is_refused_with_the_numbers_before_anything_is_sent(
    fake: FakeUpstox, feed: UpstoxFeed, clock: ManualClock, bus: EventBus
) -> None:
    class Everything:
        def broker_id(self, key: str) -> str:
            return f"NSE_EQ|{key}"

    big = UpstoxFeed(make_api(fake), bus, Everything())
    big.subscribe([f"K{i}" for i in range(1500)], FeedMode.FULL)
    with pytest.raises(CapacityExceeded, match=r"1500 instruments in full mode.*1500 are in use"):
        big.subscribe(["ONE-MORE"], FeedMode.QUOTE)
    big.subscribe([f"L{i}" for i in range(2000)], FeedMode.LTP)
    with pytest.raises(CapacityExceeded, match="2000 instruments in ltpc"):
        big.subscribe(["ONE-MORE"], FeedMode.LTP)
    assert len(big.subscriptions()) == 3500
    with pytest.raises(InstrumentUnknown):
        feed.subscribe(["NSE:NOSUCH"])
    assert feed.subscriptions() == {}
    big.api.close()


async def test_a_third_connection_is_refused(
    fake: FakeUpstox, clock: ManualClock, bus: EventBus
) -> None:
    feeds = [UpstoxFeed(make_api(fake), bus, master_for(fake, clock)) for _ in range(3)]
    try:
        feeds[0].start()
        feeds[1].start()
        with pytest.raises(CapacityExceeded, match="2 market-data connections"):
            feeds[2].start()
    finally:
        for f in feeds:
            await f.stopped()
            f.api.close()


async def test_token_expiry_stops_redialling_until_a_new_token(
    fake: FakeUpstox, feed: UpstoxFeed, bus: EventBus
) -> None:
    states = bus.subscribe(CONNECTION, "test", lossless=True)
    feed.subscribe([INFY], FeedMode.LTP)
    feed.start()
    await until(lambda: feed.connected)
    fake.expire_session()
    fake.drop_feed()
    await until(lambda: feed.session_expired)
    assert any("expired" in s.detail for s in states.drain())
    before = fake.feed_connects
    await asyncio.sleep(0.5)
    assert fake.feed_connects == before  # no redial with a dead token
    fake.access_tokens.add("new-day-token")
    feed.renew("new-day-token")
    await until(lambda: fake.feed_connects == before + 1 and len(fake.subscribed()) == 1)


async def test_option_greeks_mode_brings_the_exchange_greeks_beside_the_tick(
    fake: FakeUpstox, clock: ManualClock, feed: UpstoxFeed, bus: EventBus
) -> None:
    """``FeedMode.GREEKS`` subscribes Upstox's ``option_greeks`` mode; each protobuf
    ``firstLevelWithGreeks`` becomes a tick (best bid/ask, volume, OI) and an
    ``OptionGreeks`` on the GREEKS topic, with the numbers the fake put in the frame."""
    option = master_for(fake, clock).key_of("NSE_FO|35002")
    ticks = bus.subscribe(TICKS, "test-ticks", lossless=True)
    greeks_sub = bus.subscribe(GREEKS, "test-greeks", lossless=True)
    feed.subscribe([option], FeedMode.GREEKS)
    feed.start()
    await until(lambda: fake.subscribed() == {"NSE_FO|35002": "option_greeks"})
    fake.push("NSE_FO|35002", "101.25")
    got: list[OptionGreeks] = []

    def seen() -> bool:
        got.extend(greeks_sub.drain())
        return bool(got)

    await until(seen)
    g = got[-1]
    assert g.key == option and g.ts.tzinfo is not None
    assert (g.delta, g.gamma, g.theta, g.vega, g.rho) == (0.52, 0.0021, -12.75, 18.4, 6.1)
    assert g.iv == pytest.approx(0.14) and g.oi == 5000
    seen_ticks: list[Tick] = []

    def pushed() -> bool:
        seen_ticks.extend(t for t in ticks.drain() if t.key == option)
        return any(t.last_price == Decimal("101.25") for t in seen_ticks)

    await until(pushed)
    tick = seen_ticks[-1]
    assert tick.oi == 5000
    assert tick.depth is not None
    assert tick.depth.bids[0].price == Decimal("101.20")
    assert tick.depth.asks[0].price == Decimal("101.30")
    assert feed.subscriptions() == {option: FeedMode.GREEKS}


async def test_option_greeks_have_their_own_cap(feed: UpstoxFeed, fake: FakeUpstox) -> None:
    keys = [f"NSE:GREEKS{i}" for i in range(FEED_GREEKS_KEYS + 1)]
    with pytest.raises(CapacityExceeded, match="option_greeks"):
        feed.subscribe(keys, FeedMode.GREEKS)
    assert feed.subscriptions() == {}


def test_brokers_without_greeks_refuse_the_mode() -> None:
    """Kite, Breeze and Angel One stream no greeks: the mode is refused by name, before
    anything is looked up or sent."""
    from services.brokers.angelone.feed import AngelFeed
    from services.brokers.breeze.feed import BreezeFeed
    from services.brokers.kite.feed import KiteFeed

    for cls, name in ((KiteFeed, "Kite"), (BreezeFeed, "Breeze"), (AngelFeed, "Angel One")):
        feed = object.__new__(cls)  # the refusal comes first: no connection, no master
        with pytest.raises(BrokerError, match=f"{name} does not stream option_greeks"):
            feed.subscribe(["NFO:NIFTY26DEC24500CE"], FeedMode.GREEKS)
