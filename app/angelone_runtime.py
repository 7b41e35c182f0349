"""Angel One as the desktop's live venue (``settings.broker == "angelone"``).

Composition only, like ``app.breeze_runtime``: the adapters come from the broker registry
(``services.brokers.angelone``); this puts the day's scrip master into the terminal's
instrument registry, keeps the watched keys subscribed on SmartWebSocketV2, and starts and
stops the stream with the app. Imported only when Angel One is chosen. Order state is read
back from Angel when the order manager asks (placement, modify, cancel, the stuck-order
sweep); Angel's order-update socket is not used yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from app.angelone import endpoints_for
from app.settings import Settings
from services.broker import BrokerError
from services.brokers import registry
from services.brokers.angelone.execution import AngelExecution
from services.brokers.ports import FeedMode, MarketDataFeed, SecretStore
from services.bus import EventBus
from services.clock import Clock
from services.instruments import InstrumentRegistry

log = logging.getLogger(__name__)


class AngelRuntime:
    def __init__(
        self,
        settings: Settings,
        bus: EventBus,
        clock: Clock,
        instruments: InstrumentRegistry,
        *,
        secrets: SecretStore,
        options: dict[str, Any] | None = None,
    ) -> None:
        self._instruments = instruments
        self.parts = registry.build(
            "angelone",
            registry.BrokerContext(
                clock,
                bus,
                secrets=secrets,
                endpoints=endpoints_for(settings),
                settings={"api_key": settings.angelone.api_key or ""},
                options=options or {},
            ),
        )
        execution = self.parts.execution
        assert isinstance(execution, AngelExecution)
        self.broker = execution
        self.feed: MarketDataFeed | None = None
        self._wanted: set[str] = set()

    async def load_instruments(self) -> int:
        """Today's scrip master into the registry; the feed is built on it."""
        assert self.parts.instruments is not None
        master = await self.parts.instruments.fetch_master()
        self._instruments.add(master.instruments())
        if self.parts.feed is not None and self.feed is None:
            try:
                self.feed = self.parts.feed(master)
            except BrokerError as exc:  # not logged in today: orders will say so too
                log.warning("Angel One stream: %s", exc)
        return len(master)

    def watch(self, keys: Iterable[str]) -> None:
        """Keep ticks flowing for ``keys`` (idempotent; before or after the stream starts)."""
        new = [k for k in keys if k not in self._wanted and self._instruments.get(k)]
        if not new or self.feed is None:
            return
        try:
            self.feed.subscribe(new, FeedMode.FULL)
        except BrokerError as exc:  # over capacity, or not streamable: say so, keep the rest
            log.warning("Angel One stream: %s", exc)
            return
        self._wanted.update(new)

    def start_stream(self) -> None:
        if self.feed is not None:
            self.feed.start()

    def stop_stream(self) -> None:
        if self.feed is not None:
            self.feed.stop()

    @property
    def connected(self) -> bool:
        return self.feed is not None and self.feed.status().connected
