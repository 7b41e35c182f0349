"""Upstox as the desktop's live venue (``settings.broker == "upstox"``).

Composition only: the adapters come from the broker registry (``services.brokers.upstox``);
this puts the day's master into the terminal's instrument registry, keeps the watched keys
subscribed on Market Data Feed V3, and starts and stops the feed and the portfolio stream
(order updates, reconciled with the order book after every reconnect) with the app.
Imported only when Upstox is chosen.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from app.settings import Settings
from services.broker import BrokerError
from services.brokers import registry
from services.brokers.ports import FeedMode, MarketDataFeed, SecretStore, SessionToken
from services.brokers.throttle import DailyCountStore
from services.brokers.upstox.execution import UpstoxExecution
from services.brokers.upstox.session import UpstoxSession
from services.bus import EventBus
from services.clock import Clock
from services.instruments import InstrumentRegistry

log = logging.getLogger(__name__)


class UpstoxRuntime:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        clock: Clock,
        instruments: InstrumentRegistry,
        *,
        secrets: SecretStore,
        counts: DailyCountStore | None = None,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._instruments = instruments
        # Called (on the loop) when Upstox refuses the day's token: the desktop's re-login.
        self.session_listeners: list[Callable[[], None]] = []
        self.parts = registry.build(
            "upstox",
            registry.BrokerContext(
                clock,
                bus,
                secrets=secrets,
                counts=counts,
                endpoints=settings.upstox.endpoints(),
                settings={
                    "algo_name": settings.upstox.algo_name or "",
                    "redirect_uri": settings.upstox.redirect_url,
                },
                on_session_expired=self._session_expired,
                options=options or {},
            ),
        )
        execution = self.parts.execution
        assert isinstance(execution, UpstoxExecution)
        self.broker = execution
        self.feed: MarketDataFeed | None = None
        self._wanted: set[str] = set()

    async def load_instruments(self) -> int:
        """Today's Upstox master into the registry; the feed is built on it."""
        master = await self.broker.masters.get()
        self._instruments.add(master.instruments())
        if self.parts.feed is not None and self.feed is None:
            self.feed = self.parts.feed(master)
        return len(master)

    def watch(self, keys: Iterable[str]) -> None:
        """Keep ticks flowing for ``keys`` (idempotent; before or after the feed starts)."""
        new = [k for k in keys if k not in self._wanted and self._instruments.get(k)]
        if not new or self.feed is None:
            return
        try:
            self.feed.subscribe(new, FeedMode.FULL)
        except BrokerError as exc:  # over the connection's capacity: say so, keep the rest
            log.warning("Upstox feed: %s", exc)
            return
        self._wanted.update(new)

    def start_stream(self) -> None:
        if self.feed is not None:
            self.feed.start()
        if self.broker.order_stream is not None:
            self.broker.order_stream.start()

    def stop_stream(self) -> None:
        if self.feed is not None:
            self.feed.stop()
        if self.broker.order_stream is not None:
            self.broker.order_stream.stop()

    def _session_expired(self) -> None:
        for listener in list(self.session_listeners):
            listener()

    async def login(self, open_browser: Callable[[str], object]) -> SessionToken:
        """The browser login (``dalal login upstox``'s flow); every part takes the new token."""
        session = self.parts.session
        if not isinstance(session, UpstoxSession):
            raise BrokerError("no credential store: run `dalal credentials set upstox`")
        token = await session.login(open_browser)
        self.parts.use_token(token)
        return token

    @property
    def connected(self) -> bool:
        return self.feed is not None and self.feed.status().connected
