"""Kite's harness: the fake Kite (tests/fakes/kite_server.py) and the real kiteconnect SDK.

The adapter is built through the registry with the fake's URLs; the fake injects faults on
the next request (a late answer after the order is recorded, a cut connection, 429, an
expired token, RMS and static-IP refusals).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable, Coroutine
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from services.brokers import registry
from services.brokers.kite.config import KiteEndpoints
from services.brokers.ports import (
    FeedMode,
    MarketDataFeed,
    SessionToken,
)
from services.bus import EventBus
from services.domain import (
    Exchange,
    Instrument,
    InstrumentKind,
    OrderType,
    Product,
    Validity,
)
from tests.brokers.conformance.harness import Fault, Feature, FeedControl, Sample
from tests.brokers.conformance.live_harness import Advance, LiveHarness
from tests.fakes.kite_server import FakeKite

REPO = Path(__file__).resolve().parents[3]

FAULTS = {
    Fault.TIMEOUT_AFTER_SEND: ("place", "timeout_after"),
    Fault.DROP_AFTER_SEND: ("place", "drop_after"),
    Fault.RATE_LIMITED: ("place", "429"),
    Fault.INSUFFICIENT_FUNDS: ("place", "margin"),
    Fault.IP_NOT_ALLOWED: ("place", "static_ip"),
}


class Harness(LiveHarness):
    name = "kite"
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
        Sample("NFO:NIFTYFUT", Decimal("24410.00"), Decimal("0.1"), 75, Product.NRML),
    )

    def __init__(self) -> None:
        super().__init__()
        self.fake = FakeKite(hang_seconds=1.0)

    def _context(
        self, bus: EventBus, advance: Advance, options: dict[str, Any]
    ) -> registry.BrokerContext:
        return registry.BrokerContext(
            self.clock,
            bus,
            counts=self.counts,
            endpoints=KiteEndpoints(
                root=self.fake.base_url,
                login=f"{self.fake.base_url}/connect/login",
                ticker=f"ws://127.0.0.1:{self.fake.port}/ws",
            ),
            settings={"api_key": self.fake.api_key},
            access_token="fakeaccesstoken",
            on_session_expired=self._expired,
            options={"timeout": 0.4, "lookup_delay": 0.0, "sleep": advance, **options},
        )

    def restore_session(self) -> None:
        token = "freshaccesstoken"
        self.fake.access_tokens.add(token)
        self._hand_out(SessionToken(token, self.clock.now() + timedelta(hours=20)))

    def venue_orders(self, tag: str) -> int:
        return sum(1 for o in self.fake.live_orders() if o.get("tag") == tag)

    def feed_control(self) -> KiteFeedControl:
        return KiteFeedControl(self)

    def run_feed(
        self, scenario: Callable[[FeedControl], Coroutine[Any, Any, dict[str, Any]]]
    ) -> dict[str, Any]:
        # Twisted's reactor cannot restart within a process: the scenario gets its own.
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        proc = subprocess.run(
            [sys.executable, "-m", "tests.brokers.conformance.run_feed", self.name],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
        return result


class KiteFeedControl:
    """The fake Kite's ticker socket, for the feed contract (run in its own process)."""

    def __init__(self, harness: Harness) -> None:
        self.harness = harness
        self.fake = harness.fake
        self.bus = EventBus()
        self._keys = {
            "NSE:INFY": FeedMode.FULL,
            "NSE:NIFTY 50": FeedMode.LTP,
            "CDS:USDINRFUT": FeedMode.QUOTE,
        }

    def feed(self) -> MarketDataFeed:
        self.harness.bus = self.bus
        parts = self.harness._build()
        assert parts.instruments is not None and parts.feed is not None
        master = parts.instruments.master_from_cache(
            [
                Instrument(
                    Exchange(i.exchange),
                    i.tradingsymbol,
                    str(i.token),
                    i.name,
                    InstrumentKind.EQUITY,
                    Decimal(i.tick_size) or Decimal("0.05"),
                    i.lot_size,
                )
                for i in self.fake.instruments.values()
                if i.exchange in {e.value for e in Exchange}
            ],
            self.harness.clock.now().date(),
        )
        return parts.feed(master)

    def keys(self) -> dict[str, FeedMode]:
        return dict(self._keys)

    def unknown_key(self) -> str:
        return "NSE:NOSUCHSYMBOL"

    def push_ticks(self) -> None:
        self.fake.push_ticks()

    def drop_sockets(self) -> None:
        self.fake.drop_sockets()

    def silence(self, silent: bool) -> None:
        self.fake.heartbeats = not silent

    def server_subscriptions(self) -> dict[str, FeedMode]:
        sockets = self.fake.subscriptions()
        if not sockets:
            return {}
        by_token = {i.token: i.key for i in self.fake.instruments.values()}
        return {by_token[t]: FeedMode(m) for t, m in sockets[-1].items() if t in by_token}
