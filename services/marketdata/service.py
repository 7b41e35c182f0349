"""One history service per profile: the store in its database and the configured providers.

Everything that wants past candles goes through here (the chart, the models, the CLI,
candle repair after a reconnect): stored bars first, the providers for what is missing, and
the live bars built today on top. Before this there were three merges (the app's chart
history, the Kite runtime's, the models runtime's), each with its own rules.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from services.bus import Topic
from services.calendar import IST
from services.clock import Clock, SystemClock
from services.domain import Bar, ConnectionState, ConnectionStatus, Timeframe
from services.marketdata.breaker import BreakerState
from services.marketdata.config import (
    Credentials,
    MarketDataConfig,
    build_providers,
    quote_sources,
)
from services.marketdata.errors import NoProvider
from services.marketdata.providers.base import HistorySource, TickSize, default_tick
from services.marketdata.providers.nse import NseEndpoints
from services.marketdata.router import MarketDataRouter, Progress, ProviderHealth
from services.marketdata.store import HistoryStore
from services.storage.database import Database

_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
# (key, timeframe, count, end) -> up to ``count`` bars ending before ``end`` (the simulator's)
Fallback = Callable[[str, Timeframe, int, datetime], Sequence[Bar]]
# (key, timeframe) -> the bars built from today's ticks, closed and live (in memory)
LiveBars = Callable[[str, Timeframe], Sequence[Bar]]
# (key, timeframe, count, end) -> bars recorded from live ticks in earlier runs (blocking)
Recorded = Callable[[str, Timeframe, int, datetime], Sequence[Bar]]


@dataclass(frozen=True, slots=True)
class HistoryLoaded:
    """Real history for a chart arrived (the chart reloads its bars)."""

    key: str
    timeframe: Timeframe
    bars: int


HISTORY: Topic[HistoryLoaded] = Topic("history")


def recorded_from(db: Database) -> Recorded:
    """Closed bars the recorder kept from live ticks in this profile (blocking)."""

    def read(key: str, timeframe: Timeframe, count: int, end: datetime) -> list[Bar]:
        stored = [b for b in db.bars.between(key, timeframe, _EPOCH, end) if b.closed]
        stored.sort(key=lambda b: b.start)
        return stored[-count:]

    return read


def health_state(health: ProviderHealth, now: datetime) -> ConnectionState:
    """A provider's circuit as the status bar shows connections (``data:<provider>``)."""
    status = {BreakerState.CLOSED: ConnectionStatus.CONNECTED,
              BreakerState.HALF_OPEN: ConnectionStatus.CONNECTING}.get(
                  health.state, ConnectionStatus.DISCONNECTED)
    detail = health.reason
    if health.state is BreakerState.OPEN:
        detail = f"{health.reason}; retry in {health.retry_in:.0f} s"
    elif health.delayed:
        detail = "delayed data"
    return ConnectionState(f"data:{health.name}", status, detail, now)


def open_router(
    db: Database | None,
    config: MarketDataConfig,
    credentials: Credentials,
    *,
    cache_dir: Path | None = None,
    clock: Clock | None = None,
    broker: HistorySource | None = None,
    tick_size: TickSize = default_tick,
) -> MarketDataRouter:
    providers = build_providers(config, credentials, cache_dir=cache_dir, broker=broker,
                                tick_size=tick_size, clock=clock)
    store = HistoryStore(db) if db is not None else None
    return MarketDataRouter(providers, store, clock=clock or SystemClock(),
                            quotes=quote_sources(config, providers))


class HistoryService:
    """Bars for a chart or a model, newest wins where two sources hold the same bucket:

    1. ``live``: bars the bar builder made from this session's ticks;
    2. ``recorded``: bars recorded from live ticks in earlier runs (the profile database);
    3. the history store, filled from the providers for what is missing;
    4. ``fallback``: the simulator's synthetic history, only when nothing real covers the
       range (no provider configured, or none that covers the instrument), so a fresh
       install still draws a chart and trains a model.
    """

    def __init__(
        self,
        router: MarketDataRouter | None,
        *,
        live: LiveBars | None = None,
        recorded: Recorded | None = None,
        fallback: Fallback | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.router = router
        self._live = live
        self._recorded = recorded
        self._fallback = fallback
        self.clock = clock or (router.clock if router is not None else SystemClock())
        self.last_error: str | None = None

    @property
    def fetching(self) -> bool:
        """Providers are configured and a store is open: real history can be had."""
        return self.router is not None and self.router.configured and \
            self.router.store is not None

    async def bars(
        self, key: str, timeframe: Timeframe, count: int, end: datetime | None = None,
        *, progress: Progress | None = None, closed_only: bool = False,
    ) -> list[Bar]:
        """The newest ``count`` bars before ``end`` (now): history, then the live bars.

        Missing history is fetched from the providers (awaits network and the store).
        """
        end = end or self.clock.now()
        live = self._live_bars(key, timeframe, end, closed_only)
        if self._recorded is not None:
            recorded = await asyncio.to_thread(self._recorded, key, timeframe, count, end)
            live = _overlay(recorded, live)
        first_live = live[0].start if live else end
        need = max(count - len(live), 0)
        past: list[Bar] = []
        if need and self.fetching:
            assert self.router is not None
            try:
                past = await self.router.recent(key, timeframe, need, first_live,
                                                progress=progress)
                self.last_error = None
            except NoProvider as exc:
                self.last_error = str(exc)
        return self._merge(key, timeframe, count, live, past, first_live)

    def window(
        self, key: str, timeframe: Timeframe, count: int, end: datetime | None = None,
        *, closed_only: bool = True,
    ) -> list[Bar]:
        """Like ``bars`` but from what is stored only, no fetch (blocking: a worker thread)."""
        end = end or self.clock.now()
        live = self._live_bars(key, timeframe, end, closed_only)
        if self._recorded is not None:
            live = _overlay(self._recorded(key, timeframe, count, end), live)
        first_live = live[0].start if live else end
        need = max(count - len(live), 0)
        past: list[Bar] = []
        if need and self.router is not None and self.router.store is not None:
            past = self.router.store.last(key, timeframe, need, first_live)
        return self._merge(key, timeframe, count, live, past, first_live)

    def _live_bars(
        self, key: str, timeframe: Timeframe, end: datetime, closed_only: bool
    ) -> list[Bar]:
        bars = self._live(key, timeframe) if self._live is not None else ()
        return sorted((b for b in bars if b.start < end and (b.closed or not closed_only)),
                      key=lambda b: b.start)

    def _merge(
        self, key: str, timeframe: Timeframe, count: int, live: list[Bar], past: list[Bar],
        first_live: datetime,
    ) -> list[Bar]:
        need = max(count - len(live), 0)
        if len(past) < need and self._fallback is not None:
            until = past[0].start if past else first_live
            try:
                older = [b for b in self._fallback(key, timeframe, need - len(past), until)
                         if b.start < until]
            except KeyError:  # not an instrument the simulator knows
                older = []
            past = [*older, *past]
        merged = {b.start: b for b in past if b.start < first_live}
        merged.update((b.start, b) for b in live)
        return [merged[t] for t in sorted(merged)][-count:]


def _overlay(older: Sequence[Bar], newer: Sequence[Bar]) -> list[Bar]:
    merged = {b.start: b for b in older if b.closed}
    merged.update((b.start, b) for b in newer)
    return [merged[t] for t in sorted(merged)]


def day_range(first: str, last: str | None, now: datetime) -> tuple[datetime, datetime]:
    """``--from``/``--to`` text (a date or an ISO time; dates are IST days) to a range."""

    def parse(text: str, *, end: bool) -> datetime:
        value = datetime.fromisoformat(text)
        if value.tzinfo is None:
            value = value.replace(tzinfo=IST)
        if len(text) == 10 and end:  # a date: through the end of that day
            value += timedelta(days=1)
        return value

    start = parse(first, end=False)
    stop = parse(last, end=True) if last else now
    if stop <= start:
        raise ValueError(f"--to ({stop:%Y-%m-%d %H:%M}) is not after --from "
                         f"({start:%Y-%m-%d %H:%M})")
    return start, stop


async def refresh_holidays(
    endpoints: NseEndpoints, path: Path, *, max_age: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> bool:
    """Fetch NSE's holiday list when the cached one is missing or older than ``max_age``,
    cache it and make it the process's calendar. False when nothing was fetched."""
    from services import calendar
    from services.marketdata.providers.nse import NseWebsite

    now = now or datetime.now(UTC)
    modified = await asyncio.to_thread(_mtime, path)
    if modified is not None and now.timestamp() - modified < max_age.total_seconds():
        return False
    site = NseWebsite(endpoints)
    try:
        payload = await site.holidays()
    finally:
        await site.close()
    await asyncio.to_thread(calendar.save_cache, path, payload)
    calendar.install(calendar.load_cache(path))
    return True


def _mtime(path: Path) -> float | None:
    return path.stat().st_mtime if path.exists() else None
