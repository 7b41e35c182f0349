"""Price alerts: "tell me when RELIANCE crosses 2,500", evaluated on every tick.

An alert fires on a *crossing*, never merely because the value is already beyond its level:
each alert remembers which side of its level the value was on when it was created (or, when
no price was known yet, at the first tick it sees) and fires only when a later tick moves it
to or across the level from that side. An alert created above its "crosses above" level
therefore waits until the price has gone back below and comes up again.

The book reads TICKS losslessly, so a spike that crosses a level and comes back within one
frame still fires. Each alert fires once, then stays in the list as triggered with the time
and price of the crossing, and an ``AlertFired`` goes out on ``ALERTS`` for the views.

With a profile ``Database`` alerts survive restarts through ``AlertRepository``. Its writes run
on one worker thread of their own, in submission order, so the event loop never waits on the
disk and a deletion can never overtake the insert it undoes. The stored record keeps the
triggered price too (schema v7), so an alert fired in an earlier session comes back with it.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from services.bus import TICKS, EventBus, SubscriberLagged, Topic
from services.clock import Clock
from services.domain import Tick
from services.storage.repositories import AlertRecord

if TYPE_CHECKING:
    from services.storage.database import Database

log = logging.getLogger(__name__)

R = TypeVar("R")


class AlertCondition(enum.StrEnum):
    """What an alert watches; the values are what ``AlertRecord.condition`` stores."""

    PRICE_ABOVE = "last_price_above"
    PRICE_BELOW = "last_price_below"
    CHANGE_ABOVE = "change_pct_above"  # day change % vs the previous close
    CHANGE_BELOW = "change_pct_below"

    @property
    def rising(self) -> bool:
        return self in (AlertCondition.PRICE_ABOVE, AlertCondition.CHANGE_ABOVE)

    @property
    def label(self) -> str:
        return _LABELS[self]

    @property
    def unit(self) -> str:
        return "" if self in (AlertCondition.PRICE_ABOVE, AlertCondition.PRICE_BELOW) else "%"

    def value_of(self, tick: Tick) -> Decimal:
        return tick.change_percent if self.unit else tick.last_price


_LABELS = {
    AlertCondition.PRICE_ABOVE: "price crosses above",
    AlertCondition.PRICE_BELOW: "price crosses below",
    AlertCondition.CHANGE_ABOVE: "change % crosses above",
    AlertCondition.CHANGE_BELOW: "change % crosses below",
}


@dataclass(frozen=True, slots=True)
class Alert:
    alert_id: int
    key: str
    condition: AlertCondition
    level: Decimal
    created_at: datetime
    note: str = ""
    triggered_at: datetime | None = None
    triggered_price: Decimal | None = None  # None for one fired before schema v7

    @property
    def active(self) -> bool:
        return self.triggered_at is None

    def describe(self) -> str:
        return f"{self.key} {self.condition.label} {self.level}{self.condition.unit}"


@dataclass(frozen=True, slots=True)
class AlertFired:
    alert: Alert  # as triggered: ``triggered_at`` and ``triggered_price`` are set
    tick: Tick

    def message(self) -> str:
        return f"Alert: {self.alert.describe()} (last {self.tick.last_price})"


ALERTS: Topic[AlertFired] = Topic("alerts")


class AlertBook:
    def __init__(self, bus: EventBus, clock: Clock, store: Database | None = None) -> None:
        self._bus = bus
        self._clock = clock
        self._store = store
        self._alerts: dict[int, Alert] = {}
        # Which side of its level each active alert was last seen on: True = beyond it.
        self._beyond: dict[int, bool] = {}
        self._last: dict[str, Tick] = {}
        self._ids = itertools.count(1)
        self._writer = (
            ThreadPoolExecutor(1, thread_name_prefix="dalal-alerts") if store is not None else None
        )
        self._loaded = False
        self.fired = 0
        self.resyncs = 0
        self._watched: set[str] | None = None  # keys with an active alert; None: recompute

    # -- queries -------------------------------------------------------------------------------
    def active(self) -> list[Alert]:
        return [a for a in self.all() if a.active]

    def triggered(self) -> list[Alert]:
        return [a for a in self.all() if not a.active]

    def all(self) -> list[Alert]:
        return [self._alerts[i] for i in sorted(self._alerts)]

    def get(self, alert_id: int) -> Alert | None:
        return self._alerts.get(alert_id)

    # -- changes ---------------------------------------------------------------------------
    async def add(
        self, key: str, condition: AlertCondition | str, level: Decimal, note: str = ""
    ) -> Alert:
        """Create an alert; with a store it is written before it can fire."""
        condition = AlertCondition(condition)
        if not isinstance(level, Decimal) or not level.is_finite():
            raise ValueError(f"alert level must be a finite Decimal, not {level!r}")
        record = AlertRecord(key, condition.value, level, self._clock.now(), note)
        if self._writer is not None and self._store is not None:
            alert_id = await self._write(self._store.alerts.add, record)
        else:
            alert_id = next(self._ids)
        alert = Alert(alert_id, key, condition, level, record.created_at, note)
        self._alerts[alert_id] = alert
        self._watched = None
        tick = self._last.get(key)
        if tick is not None:
            self._beyond[alert_id] = _is_beyond(alert, tick)
        return alert

    async def remove(self, alert_id: int) -> bool:
        """Forget an alert, active or triggered; False when there was none by that id."""
        found = self._alerts.pop(alert_id, None) is not None
        self._watched = None
        self._beyond.pop(alert_id, None)
        if found and self._writer is not None and self._store is not None:
            await self._write(self._store.alerts.delete, alert_id)
        return found

    async def load(self) -> None:
        """Put back the stored alerts (active and triggered); run() calls it once."""
        if self._loaded or self._writer is None or self._store is None:
            return
        self._loaded = True
        records = await self._write(self._store.alerts.all)
        for r in records:
            if r.alert_id is None or r.alert_id in self._alerts:
                continue
            try:
                condition = AlertCondition(r.condition)
            except ValueError:
                log.warning("alert %s: unknown condition %r, skipped", r.alert_id, r.condition)
                continue
            triggered_at = None if r.active else (r.triggered_at or r.created_at)
            self._alerts[r.alert_id] = Alert(
                r.alert_id, r.key, condition, r.threshold, r.created_at, r.note, triggered_at,
                r.triggered_price if triggered_at is not None else None,
            )
        self._watched = None

    # -- evaluation ----------------------------------------------------------------------------
    def on_tick(self, tick: Tick) -> list[AlertFired]:
        """Evaluate one tick; publish and return what it fired."""
        self._last[tick.key] = tick
        fired: list[AlertFired] = []
        watched = self._watched
        if watched is None:
            watched = self._watched = {a.key for a in self._alerts.values() if a.active}
        if tick.key not in watched:
            return fired  # most ticks: no alert on this instrument
        for alert in list(self._alerts.values()):
            if alert.key != tick.key or not alert.active:
                continue
            beyond = _is_beyond(alert, tick)
            was_beyond = self._beyond.get(alert.alert_id)
            self._beyond[alert.alert_id] = beyond
            if was_beyond is False and beyond:
                fired.append(self._fire(alert, tick))
        return fired

    def _fire(self, alert: Alert, tick: Tick) -> AlertFired:
        done = replace(alert, triggered_at=tick.ts, triggered_price=tick.last_price)
        self._alerts[alert.alert_id] = done
        self._watched = None
        self._beyond.pop(alert.alert_id, None)
        self.fired += 1
        event = AlertFired(done, tick)
        self._bus.publish(ALERTS, event)
        if self._writer is not None and self._store is not None:
            future = self._writer.submit(
                self._store.alerts.mark_triggered, alert.alert_id, tick.ts, tick.last_price
            )
            future.add_done_callback(_log_failure)
        return event

    async def run(self) -> None:
        """Load stored alerts, then evaluate every tick until cancelled."""
        sub = self._bus.subscribe(TICKS, "alerts", lossless=True)
        try:
            await self.load()
            while True:
                try:
                    batch = await sub.next_batch()
                except SubscriberLagged:
                    # Resync from the next tick: each alert keeps the side of its level it
                    # was last seen on, so a level crossed during the gap still fires if the
                    # price is beyond it now. A crossing and return inside the gap is missed;
                    # the bus counts the lag (dalal_bus_subscriber_lagged_total).
                    log.warning("alert book fell behind the feed; resuming from the next tick")
                    self.resyncs += 1
                    continue
                for tick in batch:
                    self.on_tick(tick)
        finally:
            sub.close()

    async def close(self) -> None:
        """Let queued writes finish, then release the writer thread."""
        if self._writer is not None:
            await asyncio.to_thread(self._writer.shutdown, True)

    async def _write(self, fn: Callable[..., R], *args: Any) -> R:
        assert self._writer is not None
        return await asyncio.get_running_loop().run_in_executor(self._writer, fn, *args)


def _is_beyond(alert: Alert, tick: Tick) -> bool:
    value = alert.condition.value_of(tick)
    return value >= alert.level if alert.condition.rising else value <= alert.level


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("alert state not written: %s", exc)
