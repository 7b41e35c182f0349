"""ICICI Direct Breeze as the desktop's live venue (``settings.broker == "breeze"``).

Composition only: the adapters come from the broker registry (``services.brokers.breeze``);
this puts the day's master into the terminal's instrument registry, keeps the watched keys
subscribed on the stream, and starts and stops it with the app. Imported only when Breeze is
chosen. Order state is read back from Breeze when the order manager asks (placement, modify,
cancel, the stuck-order sweep): the order-notification stream is not used yet.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

from app.settings import Settings
from services.broker import BrokerError
from services.brokers import registry
from services.brokers.breeze.execution import BreezeExecution
from services.brokers.ports import FeedMode, MarketDataFeed, SecretStore
from services.brokers.throttle import DailyCountStore
from services.bus import EventBus
from services.clock import Clock
from services.instruments import InstrumentRegistry

log = logging.getLogger(__name__)


class BreezeRuntime:
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
        self._bus = bus
        self._instruments = instruments
        self.parts = registry.build(
            "breeze",
            registry.BrokerContext(
                clock,
                bus,
                secrets=secrets,
                counts=counts,
                endpoints=settings.breeze.endpoints(),
                options=options or {},
            ),
        )
        execution = self.parts.execution
        assert isinstance(execution, BreezeExecution)
        self.broker = execution
        self.feed: MarketDataFeed | None = None
        self._wanted: set[str] = set()

    async def load_instruments(self) -> int:
        """Today's ICICI master into the registry; the feed is built on it."""
        master = await self.broker.masters.get()
        self._instruments.add(master.instruments())
        if self.parts.feed is not None and self.feed is None:
            self.feed = self.parts.feed(master)
        return len(master)

    def watch(self, keys: Iterable[str]) -> None:
        """Keep ticks flowing for ``keys`` (idempotent; before or after the stream starts)."""
        new = [k for k in keys if k not in self._wanted and self._instruments.get(k)]
        if not new or self.feed is None:
            return
        try:
            self.feed.subscribe(new, FeedMode.FULL)
        except BrokerError as exc:  # over the connection's capacity: say so, keep the rest
            log.warning("Breeze stream: %s", exc)
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
