"""What every live broker's harness shares: a fake venue, adapters built through the
registry on a manual clock, faults injected into the fake, and new sessions handed to every
adapter built so far. A broker's harness says how its context is built (``_context``), which
of the fake's routes each fault goes to (``FAULTS``) and what its fake and samples are."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any

from services.brokers import registry
from services.brokers.ports import ExecutionClient, InstrumentProvider, SessionToken
from services.brokers.throttle import MemoryCountStore
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import Order
from tests.brokers.conformance.harness import Fault

MARKET_HOURS = datetime(2026, 11, 25, 10, 0, 0, tzinfo=IST)  # a Wednesday, session open

Advance = Callable[[float], Awaitable[None]]


class LiveHarness:
    name: str
    FAULTS: Mapping[Fault, tuple[str, str]] = {}  # fault -> the fake's (route, kind)
    fake: Any

    def __init__(self) -> None:
        self.clock = ManualClock(MARKET_HOURS)
        self.counts = MemoryCountStore()
        self.session_expired_calls = 0
        self.bus = EventBus()
        self._parts: list[registry.BrokerParts] = []

    def start(self) -> None:
        self.fake.start()

    def stop(self) -> None:
        self.fake.stop()

    def _expired(self) -> None:
        self.session_expired_calls += 1

    def _context(
        self, bus: EventBus, advance: Advance, options: dict[str, Any]
    ) -> registry.BrokerContext:
        raise NotImplementedError

    def _build(self, bus: EventBus | None = None, **options: Any) -> registry.BrokerParts:
        """The broker's adapters on ``bus`` (the harness's own by default); the throttle's
        waits advance the manual clock instead of sleeping."""

        async def advance(seconds: float) -> None:
            self.clock.advance(seconds)

        parts = registry.build(self.name, self._context(bus or self.bus, advance, options))
        self._parts.append(parts)
        return parts

    def execution(self) -> ExecutionClient:
        client = self._build().execution
        assert client is not None
        return client

    def instruments(self) -> InstrumentProvider:
        provider = self._build().instruments
        assert provider is not None
        return provider

    async def fill(self, order: Order, quantity: int) -> None:
        price = order.request.price
        self.fake.fill(order.order_id, quantity, str(price) if price is not None else None)

    def inject(self, fault: Fault) -> None:
        if fault is Fault.SESSION_EXPIRED:
            self._expire_session()
            return
        route, kind = self.FAULTS[fault]
        self.fake.inject(route, kind)

    def _expire_session(self) -> None:
        self.fake.expire_session()

    def _hand_out(self, token: SessionToken) -> None:
        """A new session reaches every adapter built so far, as the app's login does."""
        for parts in self._parts:
            parts.use_token(token)
