"""The latest tick of every instrument, for whoever needs a price now.

The paper broker fills market orders against it, the order ticket shows it, and position P&L
marks to it. It keeps only the newest tick per key, so it stays small however fast the feed is.
"""

from __future__ import annotations

from decimal import Decimal

from services.bus import TICKS, EventBus
from services.domain import Tick


class QuoteBook:
    def __init__(self, bus: EventBus) -> None:
        self._bus = bus
        self._ticks: dict[str, Tick] = {}

    def update(self, tick: Tick) -> None:
        """Keep ``tick`` unless a newer one for its key is already held (out-of-order feeds)."""
        held = self._ticks.get(tick.key)
        if held is None or tick.ts >= held.ts:
            self._ticks[tick.key] = tick

    def last_tick(self, key: str) -> Tick | None:
        return self._ticks.get(key)

    def last_price(self, key: str) -> Decimal | None:
        tick = self._ticks.get(key)
        return None if tick is None else tick.last_price

    def keys(self) -> list[str]:
        return list(self._ticks)

    async def run(self) -> None:
        """Consume TICKS until cancelled."""
        sub = self._bus.subscribe(TICKS, "quote-book")
        try:
            while True:
                for tick in await sub.next_batch():
                    self.update(tick)
        finally:
            sub.close()
