"""One client-side order throttle for every broker, configured from the broker's limits.

Brokers cap orders per second, minute, 30 minutes, hour and day, and answer 429 (or worse,
403) above the cap; the exchange's own 10-orders-a-second rule for retail algos binds below
some of them. Each broker's ``config.py`` declares its windows (kept below the published
limits, so orders placed from the broker's own apps on the same account still fit) and the
throttle spreads a burst over them. An order that would have to wait more than ``max_wait``
seconds is held back with a message instead of being sent late: a trader who clicked now
does not want it silently filled a minute later.

The day's count survives a restart: a terminal restarted at 14:00 must not believe it has a
fresh 5,000 orders. The count goes to a ``DailyCountStore``; the terminal uses the profile
database (``OrderCountRepository``, the ``order_counts`` migration), because the order
journal already lives there under the same encryption and backups, and a separate state
file would be one more thing to lose or tamper with. Writes are handed to an executor and
not awaited, so the order path does not wait on a disk sync; a crash between send and write
can lose at most the orders in flight, which the headroom below the broker's limit absorbs.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Executor
from datetime import date, datetime
from typing import Protocol

from services.brokers.errors import ThrottleLimited
from services.brokers.ports import BrokerLimits, RateWindow
from services.clock import Clock, to_ist

log = logging.getLogger(__name__)

__all__ = ["DailyCountStore", "MemoryCountStore", "OrderThrottle", "ThrottleLimited"]


class DailyCountStore(Protocol):
    """Orders sent per broker per IST day. ``save`` may block: it is called off the loop."""

    def load(self, broker: str, day: date) -> int: ...

    def save(self, broker: str, day: date, sent: int) -> None: ...


class MemoryCountStore:
    """A store that forgets on exit: for tests, benches and a paper session."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, date], int] = {}

    def load(self, broker: str, day: date) -> int:
        return self.counts.get((broker, day), 0)

    def save(self, broker: str, day: date, sent: int) -> None:
        self.counts[(broker, day)] = sent


class OrderThrottle:
    """Sliding windows of send times, and a count per IST day.

    ``reserve`` books a send slot and returns how long to wait for it; the windows hold the
    *scheduled* send times, so several orders arriving together are spread out correctly.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        windows: Sequence[RateWindow] = (),
        per_day: int | None = None,
        broker: str = "the broker",
        store: DailyCountStore | None = None,
        executor: Executor | None = None,
        max_wait: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self.windows = tuple(sorted(windows, key=lambda w: w.seconds))
        self.per_day = per_day
        self.broker = broker
        self.max_wait = max_wait
        self._sleep = sleep
        self._store = store
        self._executor = executor
        self._sent: list[deque[float]] = [deque() for _ in self.windows]
        self._day: date | None = to_ist(clock.now()).date()
        self.sent_today = store.load(broker, self._day) if store is not None else 0

    @classmethod
    def for_limits(
        cls, limits: BrokerLimits, clock: Clock, *, broker: str, **kwargs: object
    ) -> OrderThrottle:
        """The throttle a broker's ``config.LIMITS`` asks for."""
        return cls(
            clock,
            windows=limits.order_windows,
            per_day=limits.orders_per_day,
            broker=broker,
            **kwargs,  # type: ignore[arg-type]
        )

    def reserve(self, now: datetime | None = None) -> float:
        """Book a slot and return the seconds to wait; raise ``ThrottleLimited`` if too long."""
        now = now or self._clock.now()
        t = now.timestamp()
        today = to_ist(now).date()
        if today != self._day:
            self._day = today
            self.sent_today = 0
        if self.per_day is not None and self.sent_today >= self.per_day:
            raise ThrottleLimited(
                f"order held back: {self.per_day:,} orders already sent today, the daily "
                f"limit kept below {self.broker}'s; more can be sent tomorrow"
            )
        for window, sent in zip(self.windows, self._sent, strict=True):
            while sent and sent[0] <= t - window.seconds:
                sent.popleft()
        # First come, first served: never schedule before an order already waiting.
        latest = max((sent[-1] for sent in self._sent if sent), default=t)
        at = max(t, latest)
        reason = "orders already waiting"
        for window, sent in zip(self.windows, self._sent, strict=True):
            if len(sent) >= window.limit:
                slot = sent[-window.limit] + window.seconds
                if slot > at:
                    at, reason = slot, window.label
        wait = at - t
        if wait > self.max_wait:
            raise ThrottleLimited(
                f"order held back: the limit of {reason} is reached and this order would "
                f"have to wait {wait:.1f} s (more than {self.max_wait:g} s); try again shortly"
            )
        for sent in self._sent:
            sent.append(at)
        self.sent_today += 1
        self._persist(today, self.sent_today)
        return wait

    async def acquire(self) -> float:
        """Wait for a send slot (at most ``max_wait``); return the time waited."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
        return wait

    def _persist(self, day: date, sent: int) -> None:
        store = self._store
        if store is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            store.save(self.broker, day, sent)
            return
        future = loop.run_in_executor(self._executor, store.save, self.broker, day, sent)
        future.add_done_callback(_log_failure)


def _log_failure(future: asyncio.Future[None]) -> None:
    if not future.cancelled() and future.exception() is not None:
        log.error("order count not saved: %s", future.exception())
