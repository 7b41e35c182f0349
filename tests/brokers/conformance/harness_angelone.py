"""Angel One's harness: the fake SmartAPI (tests/fakes/angelone) and the real smartapi-python.

The adapter is built through the registry with the fake's URLs and a day's session issued
by the fake (as ``dalal login angelone`` would store it). The fake injects faults on the next
request: a late answer or a cut connection after the order is recorded, Angel's HTTP 403
rate-limit page, an expired token (AG8002 until a new login), an RMS funds refusal and a
static-IP refusal. The feed runs in-process: SmartWebSocketV2 connections are plain threads.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from typing import Any

from services.brokers import registry
from services.brokers.angelone.config import AngelEndpoints
from services.brokers.angelone.wire import EXCHANGE_TYPES
from services.brokers.ports import (
    FeedMode,
    InstrumentMaster,
    MarketDataFeed,
    SessionToken,
)
from services.bus import EventBus
from services.domain import OrderType, Product, Validity
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.brokers.conformance.live_harness import Advance, LiveHarness
from tests.fakes.angelone import FakeAngel

MODES = {1: FeedMode.LTP, 2: FeedMode.QUOTE, 3: FeedMode.FULL}

FAULTS = {
    Fault.TIMEOUT_AFTER_SEND: ("placeOrder", "timeout_after"),
    Fault.DROP_AFTER_SEND: ("placeOrder", "drop_after"),
    Fault.RATE_LIMITED: ("placeOrder", "rate_limit"),
    Fault.INSUFFICIENT_FUNDS: ("placeOrder", "funds"),
    Fault.IP_NOT_ALLOWED: ("placeOrder", "ip"),
}


class Harness(LiveHarness):
    name = "angelone"
    FAULTS = FAULTS
    features = frozenset(Feature) - {Feature.VENUE_RESTART, Feature.ORDER_RATE}  # node-only
    faults = frozenset({*FAULTS, Fault.SESSION_EXPIRED})
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.SL_M, OrderType.MARKET)
    validities = (Validity.DAY, Validity.IOC)
    samples = (
        Sample("NSE:SBIN", Decimal("812.40"), Decimal("0.05"), 1, Product.CNC),
        Sample("NFO:NIFTY30DEC26FUT", Decimal("24210.50"), Decimal("0.1"), 75, Product.NRML),
    )

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeAngel(hang_seconds=1.0)
        self._cache = tempfile.mkdtemp(prefix="dalal-angel-master-")
        self._session: SessionToken | None = None

    def start(self) -> None:
        super().start()
        self._session = self._new_session()

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._cache, ignore_errors=True)

    def _new_session(self) -> SessionToken:
        jwt, refresh, feed = self.fake.issue_session()
        return SessionToken(
            jwt,
            self.clock.now() + timedelta(hours=14),
            {"refresh_token": refresh, "feed_token": feed, "client_code": self.fake.client_code},
        )

    def endpoints(self) -> AngelEndpoints:
        fake = self.fake
        return AngelEndpoints(
            root=fake.base_url, stream=fake.stream_url, scrip_master=fake.master_url
        )

    def _context(
        self, bus: EventBus, advance: Advance, options: dict[str, Any]
    ) -> registry.BrokerContext:
        session = self._session
        assert session is not None, "start() first"
        return registry.BrokerContext(
            self.clock,
            bus,
            counts=self.counts,
            endpoints=self.endpoints(),
            settings={"api_key": self.fake.api_key, "cache_dir": self._cache},
            access_token=session.access_token,
            on_session_expired=self._expired,
            options={
                "timeout": 0.4,
                "lookup_delay": 0.0,
                "book_interval": 0.0,
                "sleep": advance,
                "session": dict(session.extra),
                **options,
            },
        )

    def _expire_session(self) -> None:
        self.fake.expire_sessions()

    def restore_session(self) -> None:
        self._session = self._new_session()
        self._hand_out(self._session)

    def venue_orders(self, tag: str) -> int:
        return sum(1 for o in self.fake.orders.values() if o.get("ordertag") == tag)

    def feed_control(self) -> AngelFeedControl:
        return AngelFeedControl(self)

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        control = self.feed_control()
        return asyncio.run(scenario(control))


class AngelFeedControl:
    """The fake stream, seen through canonical keys."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.bus = harness.bus  # the registry context's bus: the feed publishes there
        parts = harness._build()
        assert parts.instruments is not None and parts.feed is not None
        self._parts = parts
        # The master is plain data: load it once, outside the scenario's loop.
        self.master: InstrumentMaster = asyncio.run(parts.instruments.fetch_master())
        self._exchanges = {t: e for e, t in EXCHANGE_TYPES.items()}

    def feed(self) -> MarketDataFeed:
        factory = self._parts.feed
        assert factory is not None
        return factory(self.master)

    def keys(self) -> dict[str, FeedMode]:
        return {
            "NSE:SBIN": FeedMode.FULL,
            "NSE:INFY": FeedMode.QUOTE,
            "NFO:NIFTY30DEC26FUT": FeedMode.LTP,
        }

    def unknown_key(self) -> str:
        return "NSE:NOSUCHSYMBOL"

    def push_ticks(self) -> None:
        self.harness.fake.push_ticks()

    def drop_sockets(self) -> None:
        self.harness.fake.drop_sockets()

    def silence(self, silent: bool) -> None:
        self.harness.fake.silent = silent

    def server_subscriptions(self) -> dict[str, FeedMode]:
        sockets = self.harness.fake.subscriptions()
        if not sockets:
            return {}
        out: dict[str, FeedMode] = {}
        for (exchange_type, token), mode in sockets[-1].items():
            key = self.master.key_of(f"{self._exchanges[exchange_type]}|{token}")
            out[key] = MODES[mode]
        return out
