"""Client-side order throttle, kept below Kite's account-wide order limits.

Kite allows 10 orders a second, 400 a minute and 5,000 a day per account (research/brokers.md
§4.3) and answers 429 above that. We stay at 8/s, 350/min and 4,500/day so that a burst from
the terminal leaves headroom for orders placed elsewhere on the same account (Kite web, an
app) and never earns a 429 in the middle of a basket. An order that would have to wait more
than ``max_wait`` seconds is held back with a message instead of being sent late: a trader
who clicked now does not want it silently filled a minute later.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from datetime import date, datetime

from services.broker import OrderRejected
from services.clock import Clock, to_ist

PER_SECOND = 8
PER_MINUTE = 350
PER_DAY = 4_500


class ThrottleLimited(OrderRejected):
    """An order held back by our own throttle; it never reached Kite."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="throttle")


class OrderThrottle:
    """Sliding windows of send times per second and per minute, and a count per IST day.

    ``reserve`` books a send slot and returns how long to wait for it; the windows hold the
    *scheduled* send times, so several orders arriving together are spread out correctly.
    """

    def __init__(
        self,
        clock: Clock,
        *,
        per_second: int = PER_SECOND,
        per_minute: int = PER_MINUTE,
        per_day: int = PER_DAY,
        max_wait: float = 2.0,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._clock = clock
        self.per_second = per_second
        self.per_minute = per_minute
        self.per_day = per_day
        self.max_wait = max_wait
        self._sleep = sleep
        self._second: deque[float] = deque()
        self._minute: deque[float] = deque()
        self._day: date | None = None
        self.sent_today = 0

    def reserve(self, now: datetime | None = None) -> float:
        """Book a slot and return the seconds to wait; raise ``ThrottleLimited`` if too long."""
        now = now or self._clock.now()
        t = now.timestamp()
        today = to_ist(now).date()
        if today != self._day:
            self._day = today
            self.sent_today = 0
        if self.sent_today >= self.per_day:
            raise ThrottleLimited(
                f"order held back: {self.per_day:,} orders already sent today, the daily "
                "limit kept below Kite's 5,000 per account; Kite accepts more tomorrow"
            )
        while self._second and self._second[0] <= t - 1.0:
            self._second.popleft()
        while self._minute and self._minute[0] <= t - 60.0:
            self._minute.popleft()
        # First come, first served: never schedule before an order already waiting.
        at = max(t, self._minute[-1]) if self._minute else t
        reason = "orders already waiting"
        if len(self._second) >= self.per_second:
            slot = self._second[-self.per_second] + 1.0
            if slot > at:
                at, reason = slot, f"{self.per_second} orders a second"
        if len(self._minute) >= self.per_minute:
            slot = self._minute[-self.per_minute] + 60.0
            if slot > at:
                at, reason = slot, f"{self.per_minute} orders a minute"
        wait = at - t
        if wait > self.max_wait:
            raise ThrottleLimited(
                f"order held back: the limit of {reason} is reached and this order would "
                f"have to wait {wait:.1f} s (more than {self.max_wait:g} s); try again shortly"
            )
        self._second.append(at)
        self._minute.append(at)
        self.sent_today += 1
        return wait

    async def acquire(self) -> float:
        """Wait for a send slot (at most ``max_wait``); return the time waited."""
        wait = self.reserve()
        if wait > 0:
            await self._sleep(wait)
        return wait
