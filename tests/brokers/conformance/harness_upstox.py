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
from datetime import timedelta
from decimal import Decimal
from typing import Any

from services.brokers import registry
from services.brokers.ports import (
    FeedMode,
    InstrumentMaster,
    MarketDataFeed,
    SessionToken,
)
from services.brokers.upstox.instruments import contract_symbol, expiry_date
from services.bus import EventBus
from services.domain import InstrumentKind, OrderType, Product, Validity
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.brokers.conformance.live_harness import MARKET_HOURS, Advance, LiveHarness
from tests.brokers.upstox.conftest import endpoints_for
from tests.fakes.upstox import FakeUpstox, default_instruments

FAULTS = {
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


class Harness(LiveHarness):
    name = "upstox"
    FAULTS = FAULTS
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
    faults = frozenset({*FAULTS, Fault.SESSION_EXPIRED})
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.SL_M, OrderType.MARKET)
    validities = (Validity.DAY, Validity.IOC)
    samples = (
        Sample("NSE:INFY", Decimal("1573.70"), Decimal("0.1"), 1, Product.CNC),
        Sample(_future_key(), Decimal("24410.00"), Decimal("0.1"), 75, Product.NRML),
    )

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeUpstox(
            hang_seconds=1.0, instruments=default_instruments(MARKET_HOURS.date())
        )

    def _context(
        self, bus: EventBus, advance: Advance, options: dict[str, Any]
    ) -> registry.BrokerContext:
        return registry.BrokerContext(
            self.clock,
            bus,
            counts=self.counts,
            endpoints=endpoints_for(self.fake),
            access_token="fake-access-token",
            on_session_expired=self._expired,
            options={
                "timeout": 0.4,
                "lookup_delay": 0.0,
                "sleep": advance,
                "feed": {"backoff_initial": 0.05, "backoff_max": 0.5},
                **options,
            },
        )

    def restore_session(self) -> None:
        token = "fresh-access-token"
        self.fake.access_tokens.add(token)
        self._hand_out(SessionToken(token, self.clock.now() + timedelta(hours=17)))

    def venue_orders(self, tag: str) -> int:
        return len(self.fake.orders_with_tag(tag))

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
