"""The small interface each broker implements so that the one contract suite can drive it.

A harness owns the broker's fake venue (its fake server on 127.0.0.1, speaking the real wire
format) and builds the adapter *through the registry* (``services.brokers.registry.build``)
and the official SDK, pointed at the fake. The suite never talks to the fake directly: it
asks the harness to fill an order, to inject a fault, or to restart the adapter.

Implement it in ``tests/brokers/conformance/harness_<name>.py`` (``<name>`` as registered)
as a class named ``Harness``; see ``services/brokers/_template/README.md``.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Protocol

from services.brokers.ports import ExecutionClient, FeedMode, InstrumentProvider, MarketDataFeed
from services.brokers.throttle import MemoryCountStore
from services.bus import EventBus
from services.clock import ManualClock
from services.domain import Order, OrderType, Product, Validity


class Feature(enum.StrEnum):
    """What a harness can exercise; the suite skips the rest, naming what was skipped."""

    ORDERS = "orders"  # place / modify / cancel every declared type, product, validity
    # An intraday (MIS) equity order: its product survives the broker's own codes both ways
    # (Upstox "I", Angel "INTRADAY", ICICI "margin"), in the order book and in positions.
    INTRADAY = "intraday"
    # An after-market order: sent as the broker's AMO (Kite's variety, Upstox's is_amo,
    # Angel's AMO variety) and reported back as one, then cancelled.
    AMO = "amo"
    PARTIAL_FILLS = "partial_fills"
    OUTCOME_UNKNOWN = "outcome_unknown"  # Fault.TIMEOUT_AFTER_SEND resolved by tag
    THROTTLE = "throttle"  # the broker's order windows spread a burst
    SESSION_EXPIRY = "session_expiry"  # Fault.SESSION_EXPIRED mid-day, then a new login
    RESTART = "restart"  # a new adapter (after a crash) reports the same day
    # The venue itself restarts (the order node's process): what it acknowledged is still
    # reported, and an order sent again with the same tag is answered, not placed twice.
    VENUE_RESTART = "venue_restart"
    # The venue holds SEBI's orders-per-second rate per exchange (``order_rate``): a burst
    # beyond it waits for the window, and every order is still placed exactly once.
    ORDER_RATE = "order_rate"
    INSTRUMENTS = "instruments"
    FEED = "feed"


class Fault(enum.StrEnum):
    """Faults a fake must be able to inject on the *next* request (one-shot)."""

    TIMEOUT_AFTER_SEND = "timeout_after_send"  # the order is recorded, the answer is late
    DROP_AFTER_SEND = "drop_after_send"  # the order is recorded, the connection is cut
    RATE_LIMITED = "rate_limited"  # the broker's "too many requests"
    SESSION_EXPIRED = "session_expired"  # the token dies until ``restore_session``
    INSUFFICIENT_FUNDS = "insufficient_funds"
    IP_NOT_ALLOWED = "ip_not_allowed"  # SEBI static-IP refusal


@dataclass(frozen=True, slots=True)
class Sample:
    """An instrument the venue trades, with a price that is on its tick and near the market."""

    key: str
    price: Decimal
    tick: Decimal
    lot: int
    product: Product


FeedScenario = Callable[["FeedControl"], Coroutine[Any, Any, dict[str, Any]]]


class Harness(Protocol):
    name: str  # the registry name
    features: frozenset[Feature]
    faults: frozenset[Fault]  # the faults its fake can inject
    order_types: tuple[OrderType, ...]
    validities: tuple[Validity, ...]
    clock: ManualClock  # the adapter's clock; the throttle's sleep advances it
    counts: MemoryCountStore  # the daily order counts the adapter's throttle persists
    session_expired_calls: int  # times the adapter called its on_session_expired callback
    samples: tuple[Sample, ...]  # at least an equity; a derivative when the broker trades them
    order_rate: int | None  # ORDER_RATE: the venue's orders per second per exchange

    def start(self) -> None:
        """Start the fake venue (a fresh one per test)."""

    def stop(self) -> None: ...

    def execution(self) -> ExecutionClient:
        """A new adapter through the registry; calling it again is a restart after a crash."""

    async def fill(self, order: Order, quantity: int) -> None:
        """Make the venue fill ``quantity`` of a working order at its limit price."""

    def inject(self, fault: Fault) -> None: ...

    def restore_session(self) -> None:
        """Log in again after ``Fault.SESSION_EXPIRED`` (a new token reaches the adapter)."""

    def venue_orders(self, tag: str) -> int:
        """How many orders the venue itself holds with ``tag`` (duplicates show here)."""

    def restart_venue(self) -> None:
        """Stop the venue and start it again on the same address and state (VENUE_RESTART)."""

    def instruments(self) -> InstrumentProvider: ...

    def run_feed(self, scenario: FeedScenario) -> dict[str, Any]:
        """Run the feed contract ``scenario`` against this broker's feed and fake stream.

        In-process by default (``asyncio.run``); a broker whose SDK cannot restart within a
        process (Kite's Twisted reactor) runs it in a subprocess and returns its JSON.
        """


class FeedControl(Protocol):
    """What the feed contract needs from the fake stream, for one scenario run."""

    bus: EventBus

    def feed(self) -> MarketDataFeed:
        """The adapter's feed, built through the registry against the fake stream."""

    def keys(self) -> dict[str, FeedMode]:
        """Two or three canonical keys to subscribe, each with a mode the fake streams."""

    def unknown_key(self) -> str: ...

    def push_ticks(self) -> None:
        """Make the fake send one tick for every subscribed key."""

    def drop_sockets(self) -> None:
        """Cut every stream connection (the server side closes)."""

    def silence(self, silent: bool) -> None:
        """Stop (or resume) everything the fake sends, heartbeats included."""

    def server_subscriptions(self) -> dict[str, FeedMode]:
        """What the fake believes is subscribed on its newest connection, by canonical key."""
