"""Breeze's harness: the fake ICICI (tests/fakes/breeze/) and the real breeze-connect SDK.

The adapter is built through the registry with the fake's URLs after a real login (the
``customerdetails`` exchange of an ``API_Session``); the fake injects faults on the next
request: a late answer or a cut connection after the order is recorded, the daily-limit
reply, an insufficient-funds refusal and an expired session. ICICI's static-IP refusal text
is not known, so that fault is not offered. The feed scenario runs in-process: python-socketio
has no process-wide state to restart.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.brokers import registry
from services.brokers.breeze.instruments import SecurityMaster
from services.brokers.breeze.session import BreezeSecrets, BreezeSession
from services.brokers.ports import (
    FeedMode,
    MarketDataFeed,
)
from services.bus import EventBus
from services.domain import OrderType, Product, Validity
from tests.brokers.breeze.conftest import MemorySecrets
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.brokers.conformance.live_harness import MARKET_HOURS, Advance, LiveHarness
from tests.fakes.breeze.master import monthly_expiry
from tests.fakes.breeze.server import FakeBreeze

_FUTURE = f"NFO:NIFTY{MARKET_HOURS.year % 100}{monthly_expiry(MARKET_HOURS.date()):%b}FUT"

FAULTS = {
    Fault.TIMEOUT_AFTER_SEND: ("place", "timeout_after"),
    Fault.DROP_AFTER_SEND: ("place", "drop_after"),
    Fault.RATE_LIMITED: ("place", "limit"),
    Fault.INSUFFICIENT_FUNDS: ("place", "funds"),
}


class Harness(LiveHarness):
    name = "breeze"
    FAULTS = FAULTS
    features = frozenset(
        {
            Feature.ORDERS,
            # No INTRADAY: ICICI closes its margin product to API orders; the adapter
            # refuses MIS with that message (tests/brokers/breeze). No AMO either: Breeze's
            # API has no after-market flag, and the adapter refuses one.
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
    order_types = (OrderType.LIMIT, OrderType.SL, OrderType.MARKET)  # no SL-M at Breeze
    validities = (Validity.DAY, Validity.IOC)
    samples = (
        Sample("NSE:INFY", Decimal("1573.70"), Decimal("0.10"), 1, Product.CNC),
        Sample(_FUTURE.upper(), Decimal("24410.00"), Decimal("0.10"), 75, Product.NRML),
    )

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeBreeze(hang_seconds=1.0, today=MARKET_HOURS.date())
        self.secrets = MemorySecrets()
        self._cache = Path(tempfile.mkdtemp(prefix="breeze-master-"))

    def start(self) -> None:
        super().start()
        self.secrets.set(
            "breeze", {"api_key": self.fake.api_key, "api_secret": self.fake.api_secret}
        )
        self._login()

    def stop(self) -> None:
        super().stop()
        shutil.rmtree(self._cache, ignore_errors=True)

    def _login(self) -> None:
        session = BreezeSession(
            BreezeSecrets(self.secrets), self.clock, endpoints=self.fake.endpoints
        )
        login = session.complete_login({"API_Session": self.fake.issue_api_session()})
        # restore_session is called from inside the suite's event loop: log in on another.
        with ThreadPoolExecutor(1) as pool:
            token = pool.submit(asyncio.run, login).result(30)
        self._hand_out(token)

    def _context(
        self, bus: EventBus, advance: Advance, options: dict[str, Any]
    ) -> registry.BrokerContext:
        return registry.BrokerContext(
            self.clock,
            bus,
            secrets=self.secrets,
            counts=self.counts,
            endpoints=self.fake.endpoints,
            on_session_expired=self._expired,
            options={
                "timeout": 0.5,
                "lookup_delay": 0.0,
                "sleep": advance,
                "cache_dir": self._cache,
                **options,
            },
        )

    def restore_session(self) -> None:
        self._login()

    def venue_orders(self, tag: str) -> int:
        return sum(1 for o in self.fake.placed() if o.get("user_remark") == tag)

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        return asyncio.run(self._feed_run(scenario))

    async def _feed_run(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        parts = self._build()
        assert parts.instruments is not None and parts.feed is not None
        master = await parts.instruments.fetch_master()
        control = BreezeFeedControl(self.fake, self.bus, lambda: parts.feed(master), master)  # type: ignore[misc]
        return await scenario(control)


class BreezeFeedControl:
    def __init__(
        self,
        fake: FakeBreeze,
        bus: EventBus,
        build: Callable[[], MarketDataFeed],
        master: Any,
    ) -> None:
        self.fake = fake
        self.bus = bus
        self._build = build
        assert isinstance(master, SecurityMaster)
        self._master = master

    def feed(self) -> MarketDataFeed:
        return self._build()

    def keys(self) -> dict[str, FeedMode]:
        option = next(k for k, c in self._master.by_key.items() if c.token == "35001")
        return {"NSE:RELIANCE": FeedMode.QUOTE, "NSE:INFY": FeedMode.FULL, option: FeedMode.QUOTE}

    def unknown_key(self) -> str:
        return "NSE:NOSUCHSYMBOL"

    def push_ticks(self) -> None:
        self.fake.push_ticks()

    def drop_sockets(self) -> None:
        self.fake.drop_sockets()

    def silence(self, silent: bool) -> None:
        self.fake.silence(silent)

    def server_subscriptions(self) -> dict[str, FeedMode]:
        tokens = self.fake.subscribed_tokens(newest_only=True)
        found: dict[str, FeedMode] = {}
        for token in tokens:
            contract = self._master.by_stream_token.get(token)
            if contract is None:
                continue
            if token == contract.stream_token:
                found.setdefault(contract.key, FeedMode.QUOTE)
            elif contract.stream_token in tokens:
                found[contract.key] = FeedMode.FULL
        return found
