"""Readiness: is each component in a state to serve, and why not.

Liveness and readiness are kept apart on purpose. A live process whose feed is down must not be
restarted by its supervisor (that would not bring the exchange back, and a restart loop loses
state); it should only be reported as not ready, with the component and the reason.

A ``Readiness`` holds named probes. Each probe returns a ``Check``; required checks decide the
overall answer, optional ones (a database or models that are not configured) are only listed.
A probe that raises is reported as failed with its error, never as an HTTP 500.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.bus import CONNECTION, TICKS, EventBus, Subscription
from services.clock import Clock, is_market_open
from services.domain import ConnectionState, ConnectionStatus, Tick

if TYPE_CHECKING:
    from services.storage import Database

log = logging.getLogger(__name__)

NOT_CONFIGURED = "not configured"


@dataclass(frozen=True)
class Check:
    name: str
    ready: bool
    state: str  # a short word for humans and dashboards: "connected", "running", "stale", ...
    required: bool = True
    details: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state, "ready": self.ready, "required": self.required, **self.details}


@dataclass(frozen=True)
class ReadinessReport:
    ready: bool
    checks: tuple[Check, ...]
    stopping: bool = False

    def to_json(self) -> dict[str, Any]:
        status = "stopping" if self.stopping else "ready" if self.ready else "not ready"
        return {"status": status, "components": {c.name: c.to_json() for c in self.checks}}


Probe = Callable[[], Check]


class Readiness:
    def __init__(self) -> None:
        self._probes: dict[str, Probe] = {}
        self.stopping = False

    def add(self, name: str, probe: Probe) -> None:
        self._probes[name] = probe

    def report(self) -> ReadinessReport:
        checks = []
        for name, probe in self._probes.items():
            try:
                check = probe()
            except Exception as e:  # a broken probe is a failed check, not a broken endpoint
                log.exception("readiness probe %s failed", name)
                check = Check(name, False, "error", details={"error": type(e).__name__})
            checks.append(check)
        ready = not self.stopping and all(c.ready for c in checks if c.required)
        return ReadinessReport(ready, tuple(checks), self.stopping)


def not_configured(name: str) -> Probe:
    """A component this process does not use yet: listed, never blocking readiness."""
    check = Check(name, True, NOT_CONFIGURED, required=False)
    return lambda: check


class DatabaseMonitor:
    """The profile database's state, read by a probe that never touches the database.

    Asking SQLCipher even a trivial query takes the database's lock, which a journal commit
    (an fsync) or a long write may hold: a probe doing that on the event loop stalls every
    other request. ``run`` refreshes the state in a worker thread every ``interval`` seconds;
    ``probe`` only reads the last result, and reports it stale when refreshes stop arriving.
    """

    def __init__(
        self,
        db: Database,
        *,
        interval: float = 5.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.db = db
        self.interval = interval
        self._monotonic = monotonic
        self._check = Check("database", False, "checking")
        self._checked_at: float | None = None

    async def refresh(self) -> Check:
        self._check = await asyncio.to_thread(self._query)
        self._checked_at = self._monotonic()
        return self._check

    def _query(self) -> Check:
        try:
            version = self.db.schema_version
        except Exception as e:  # closed, locked or gone: not ready, never a 500
            return Check("database", False, "unavailable", details={"error": type(e).__name__})
        return Check("database", True, "open", details={"schema_version": version})

    async def run(self) -> None:
        while True:
            await self.refresh()
            await asyncio.sleep(self.interval)

    def probe(self) -> Check:
        check = self._check
        at = self._checked_at
        if at is not None and self._monotonic() - at > 3 * self.interval + 5:
            # The worker has not come back: the database is stuck behind a lock or a disk.
            return Check("database", False, "not responding",
                         details={"seconds_since_check": round(self._monotonic() - at, 1)})
        return check


def database_probe(monitor: DatabaseMonitor) -> Probe:
    """The last state the monitor saw (see ``DatabaseMonitor``)."""
    return monitor.probe


class FeedMonitor:
    """Watches the bus for a feed's ticks and connection state.

    It records *when we received* the last tick on the monotonic clock rather than the tick's
    own timestamp, so a feed replaying old data or a skewed exchange clock cannot look fresh.
    Tick counts come from the bus's publish counter because the tick topic is coalesced: a
    subscriber sees only the newest tick per instrument, not every tick.
    """

    def __init__(
        self, bus: EventBus, feed: str, *, monotonic: Callable[[], float] = time.monotonic
    ) -> None:
        self.bus = bus
        self.feed = feed
        self._monotonic = monotonic
        self.last_tick_at: float | None = None
        self.connection: ConnectionState | None = None

    @property
    def ticks_received(self) -> int:
        return self.bus.published.get(TICKS.name, 0)

    def last_tick_age(self) -> float | None:
        if self.last_tick_at is None:
            return None
        return max(0.0, self._monotonic() - self.last_tick_at)

    @property
    def status(self) -> ConnectionStatus:
        """The feed's own report if it publishes one; otherwise inferred from ticks arriving."""
        if self.connection is not None:
            return self.connection.status
        if self.last_tick_at is not None:
            return ConnectionStatus.CONNECTED
        return ConnectionStatus.CONNECTING

    async def run(self) -> None:
        ticks = self.bus.subscribe(TICKS, f"health:{self.feed}:ticks")
        states = self.bus.subscribe(CONNECTION, f"health:{self.feed}:connection")
        try:
            await asyncio.gather(self._watch_ticks(ticks), self._watch_states(states))
        finally:
            ticks.close()
            states.close()

    async def _watch_ticks(self, sub: Subscription[Tick]) -> None:
        while True:
            await sub.next_batch()
            self.last_tick_at = self._monotonic()

    async def _watch_states(self, sub: Subscription[ConnectionState]) -> None:
        component = f"feed:{self.feed}"
        while True:
            for state in await sub.next_batch():
                if state.component == component:
                    self.connection = state


def feed_probe(
    monitor: FeedMonitor,
    clock: Clock,
    *,
    always_open: bool,
    alive: Callable[[], bool],
    stale_after: float = 5.0,
) -> Probe:
    """Ready when the feed task runs, the feed is connected and, in market hours, ticking.

    Outside market hours a silent feed is normal, so staleness only counts while the market
    is open, and a feed that has not ticked yet is reported "idle" rather than failing.
    """

    def probe() -> Check:
        age = monitor.last_tick_age()
        market_open = is_market_open(clock.now(), always_open=always_open)
        details: dict[str, Any] = {
            "feed": monitor.feed,
            "connected": monitor.status is ConnectionStatus.CONNECTED,
            "last_tick_age_seconds": None if age is None else round(age, 3),
            "ticks_received": monitor.ticks_received,
            "market_open": market_open,
        }
        if not alive():
            return Check("feed", False, "stopped", details=details)
        reported = monitor.connection
        if reported is not None and reported.status is not ConnectionStatus.CONNECTED:
            return Check("feed", False, reported.status.value.lower(), details=details)
        if market_open:
            if age is None:
                return Check("feed", False, "waiting for first tick", details=details)
            if age > stale_after:
                return Check("feed", False, "stale", details=details)
            return Check("feed", True, "connected", details=details)
        state = "connected" if monitor.status is ConnectionStatus.CONNECTED else "idle"
        return Check("feed", True, state, details=details)

    return probe


def services_probe(
    name: str, running: Callable[[], Mapping[str, bool]], needed: list[str]
) -> Probe:
    """Ready when every background task in ``needed`` is alive."""

    def probe() -> Check:
        tasks = running()
        state = {n: bool(tasks.get(n, False)) for n in needed}
        ok = all(state.values())
        return Check(name, ok, "running" if ok else "stopped", details={"tasks": state})

    return probe
