"""Upstox's harness: the fake Upstox (tests/fakes/upstox) and the real upstox-python-sdk.

The adapter is built through the registry with the fake's URLs (``Configuration.host`` and
``order_host`` both on the fake). The fake injects faults on the next request: a late or
cut answer after the order is recorded, 429 (UDAPI10005), an expired token (UDAPI100050),
RMS and static-IP (UDAPI1154) refusals. The feed runs in-process: the adapter owns an
aiohttp socket, so nothing in it needs a fresh process.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from services.brokers import registry
from services.brokers.ports import (
    ExecutionClient,
    FeedMode,
    InstrumentMaster,
    InstrumentProvider,
    MarketDataFeed,
    SessionToken,
)
from services.brokers.throttle import MemoryCountStore
from services.brokers.upstox.instruments import contract_symbol, expiry_date
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import InstrumentKind, Order, OrderType, Product, Validity
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.brokers.upstox.conftest import endpoints_for
from tests.fakes.upstox import FakeUpstox, default_instruments

MARKET_HOURS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)  # a Wednesday, session open

_FAULTS = {
    Fault.TIMEOUT_AFTER_SEND: ("place", "timeout_after"),
    Fault.DROP_AFTER_SEND: ("place", "drop_after"),
    Fault.RATE_LIMITED: ("place", "429"),
    Fault.INSUFFICIENT_FUNDS: ("place", "margin"),
    Fault.IP_NOT_ALLOWED: ("place", "ip"),
}
_WIRE = {"ltpc": FeedMode.LTP, "full": FeedMode.FULL}


def _future_key() -> str:
    record = next(
        r
        for r in default_instruments(MARKET_HOURS.date())
        if r["segment"] == "NSE_FO" and r["instrument_type"] == "FUT"
    )
    expiry = expiry_date(record["expiry"])
    assert expiry is not None
    return "NFO:" + contract_symbol("NIFTY", InstrumentKind.FUTURE, expiry, None, False)


class Harness:
    name = "upstox"
    features = frozenset(
        {
            Feature.ORDERS,
            Feature.INTRADAY,
            Feature.AMO,
            Feature.PARTIAL_FILLS,
            Feature.OUTCOME_UNKNOWN,
            Feature.THROTTLE,
            Feature.SESSION_EXPIRY,
            Feature.RESTART,
            Feature.INSTRUMENTS,
            Feature.FEED,
        }
    )
    faults = frozenset({*_FAULTS, Fault.SESSION_EXPIRED})
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.SL_M, OrderType.MARKET)
    validities = (Validity.DAY, Validity.IOC)
    samples = (
        Sample("NSE:INFY", Decimal("1573.70"), Decimal("0.1"), 1, Product.CNC),
        Sample(_future_key(), Decimal("24410.00"), Decimal("0.1"), 75, Product.NRML),
    )

    def __init__(self) -> None:
        self.clock = ManualClock(MARKET_HOURS)
        self.counts = MemoryCountStore()
        self.session_expired_calls = 0
        self.bus = EventBus()
        self.fake = FakeUpstox(
            hang_seconds=1.0, instruments=default_instruments(MARKET_HOURS.date())
        )
        self._parts: list[registry.BrokerParts] = []

    def start(self) -> None:
        self.fake.start()

    def stop(self) -> None:
        self.fake.stop()

    def _expired(self) -> None:
        self.session_expired_calls += 1

    def _build(self, bus: EventBus | None = None) -> registry.BrokerParts:
        async def advance(seconds: float) -> None:
            self.clock.advance(seconds)

        parts = registry.build(
            "upstox",
            registry.BrokerContext(
                self.clock,
                bus or self.bus,
                counts=self.counts,
                endpoints=endpoints_for(self.fake),
                access_token="fake-access-token",
                on_session_expired=self._expired,
                options={
                    "timeout": 0.4,
                    "lookup_delay": 0.0,
                    "sleep": advance,
                    "feed": {"backoff_initial": 0.05, "backoff_max": 0.5},
                },
            ),
        )
        self._parts.append(parts)
        return parts

    def execution(self) -> ExecutionClient:
        client = self._build().execution
        assert client is not None
        return client

    async def fill(self, order: Order, quantity: int) -> None:
        price = order.request.price
        self.fake.fill(order.order_id, quantity, str(price) if price is not None else None)

    def inject(self, fault: Fault) -> None:
        if fault is Fault.SESSION_EXPIRED:
            self.fake.expire_session()
            return
        route, kind = _FAULTS[fault]
        self.fake.inject(route, kind)

    def restore_session(self) -> None:
        token = "fresh-access-token"
        self.fake.access_tokens.add(token)
        for parts in self._parts:
            parts.use_token(SessionToken(token, self.clock.now() + timedelta(hours=17)))

    def venue_orders(self, tag: str) -> int:
        return len(self.fake.orders_with_tag(tag))

    def instruments(self) -> InstrumentProvider:
        provider = self._build().instruments
        assert provider is not None
        return provider

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        async def main() -> dict[str, Any]:
            control = _FeedControl(self)
            await control.prepare()
            return await scenario(control)

        return asyncio.run(main())


class _FeedControl:
    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.fake = harness.fake
        self.bus = EventBus()
        self._parts = harness._build(self.bus)
        self._master: InstrumentMaster | None = None

    async def prepare(self) -> None:
        assert self._parts.instruments is not None
        self._master = await self._parts.instruments.fetch_master()

    def feed(self) -> MarketDataFeed:
        assert self._parts.feed is not None and self._master is not None
        return self._parts.feed(self._master)

    def keys(self) -> dict[str, FeedMode]:
        return {"NSE:INFY": FeedMode.FULL, "NSE:SBIN": FeedMode.LTP, "NSE:NIFTY 50": FeedMode.FULL}

    def unknown_key(self) -> str:
        return "NSE:NOSUCHSYMBOL"

    def push_ticks(self) -> None:
        for upstox_key in self.fake.subscribed(newest=True):
            self.fake.push(upstox_key)

    def drop_sockets(self) -> None:
        self.fake.drop_feed()

    def silence(self, silent: bool) -> None:
        self.fake.silence(silent)

    def server_subscriptions(self) -> dict[str, FeedMode]:
        assert self._master is not None
        return {
            self._master.key_of(k): _WIRE[mode]
            for k, mode in self.fake.subscribed(newest=True).items()
        }
