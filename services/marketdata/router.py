"""The market-data router: one history request, served by whichever providers can.

Per request (instrument, interval, range) the providers are taken in the configured
priority; one whose circuit is open is skipped, one whose coverage does not reach the
interval or instrument is skipped, and one that covers only part of the range (yfinance
keeps one-minute bars for 30 days) serves that part while the rest goes on down the list.
A range is cut at each provider's span per request, every request waits for the
provider's token bucket, and each answer is checked and stored in the history store before
the next is asked, so an interrupted fetch resumes where it stopped.

A provider that fails (down, 429, 403, a spent quota, an answer that is not data) gets a
failure on its circuit breaker and its part of the range passes to the next provider;
nothing of a bad answer is stored.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import partial
from typing import TypeVar, cast

from services.broker import BrokerError
from services.brokers.errors import (
    CredentialsMissing,
    HistoryNotCovered,
    InstrumentUnknown,
    PermissionDenied,
    RateLimited,
    SessionExpired,
)
from services.calendar import IST
from services.clock import Clock, SystemClock
from services.domain import Bar, Timeframe
from services.marketdata.breaker import BreakerState, CircuitBreaker
from services.marketdata.coverage import (
    INDIAN_FAMILIES,
    NFO,
    RateLimit,
    TokenBucket,
    family,
)
from services.marketdata.errors import NoData, NoProvider, ProviderError, QuotaExhausted
from services.marketdata.providers.base import HistorySource, QuoteSource
from services.marketdata.quotes import Snapshot
from services.marketdata.store import BadHistory, HistoryStore

log = logging.getLogger(__name__)
T = TypeVar("T")

# (done, total, message): days (or chunks) done of the request
Progress = Callable[[int, int, str], None]
Range = tuple[datetime, datetime]


@dataclass
class ProviderHealth:
    """One provider as the status bar and ``/metrics`` show it."""

    name: str
    state: BreakerState
    reason: str
    retry_in: float
    requests: int
    failures: int
    last_latency: float | None
    delayed: bool


@dataclass
class FetchReport:
    key: str
    timeframe: Timeframe
    stored: int = 0
    days: int = 0  # trading days the request spans
    skipped: int = 0  # days already complete (resumed)
    by_provider: Counter[str] = field(default_factory=Counter)
    unserved: list[tuple[Range, str]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        head = f"{self.stored} {self.timeframe.value} bars of {self.key} stored"
        if self.by_provider:
            head += " from " + ", ".join(f"{n} ({c})" for n, c in self.by_provider.items())
        parts = [head]
        if self.skipped:
            parts.append(f"{self.skipped} of {self.days} days already complete")
        return "; ".join(parts)


@dataclass(frozen=True, slots=True)
class _Declined:
    """A provider that did not answer a request: the reason, as the report says it."""

    message: str


@dataclass
class _Slot:
    source: HistorySource | QuoteSource
    breaker: CircuitBreaker
    bucket: TokenBucket
    requests: int = 0
    failures: int = 0
    last_latency: float | None = None
    latencies: list[float] = field(default_factory=list)


class MarketDataRouter:
    def __init__(
        self,
        providers: Sequence[HistorySource],
        store: HistoryStore | None = None,
        *,
        clock: Clock | None = None,
        breaker: Callable[[], CircuitBreaker] = CircuitBreaker,
        monotonic: Callable[[], float] = time.monotonic,
        rate: Callable[[RateLimit], RateLimit] | None = None,
        quotes: Sequence[QuoteSource] = (),
    ) -> None:
        self.store = store
        self.clock = clock or SystemClock()
        self._monotonic = monotonic
        # Called with a provider's health whenever its circuit changes state (status bar).
        self.listeners: list[Callable[[ProviderHealth], None]] = []
        self._slots = [
            _Slot(p, breaker(), TokenBucket(rate(p.info.rate) if rate else p.info.rate,
                                            clock=monotonic))
            for p in providers
        ]
        # Snapshot quotes, in their own priority; a provider serving both shares one
        # breaker and one token bucket (Yahoo's 429 stops its history and quotes alike).
        by_source = {id(s.source): s for s in self._slots}
        self._quote_slots = [
            by_source.get(id(q)) or _Slot(q, breaker(), TokenBucket(
                rate(q.info.rate) if rate else q.info.rate, clock=monotonic))
            for q in quotes
        ]

    @property
    def providers(self) -> list[HistorySource]:
        return [cast(HistorySource, s.source) for s in self._slots]

    @property
    def quote_sources(self) -> list[QuoteSource]:
        return [cast(QuoteSource, s.source) for s in self._quote_slots]

    @property
    def configured(self) -> bool:
        return bool(self._slots)

    def breaker(self, name: str) -> CircuitBreaker:
        for slot in self._unique_slots():
            if slot.source.name == name:
                return slot.breaker
        raise KeyError(name)

    def health(self) -> list[ProviderHealth]:
        return [self._health(s) for s in self._unique_slots()]

    @staticmethod
    def _health(s: _Slot) -> ProviderHealth:
        return ProviderHealth(s.source.name, s.breaker.state, s.breaker.reason,
                              s.breaker.retry_in(), s.requests, s.failures, s.last_latency,
                              s.source.info.delayed)

    def _notify(self, slot: _Slot, before: BreakerState) -> None:
        if slot.breaker.state is before and before is not BreakerState.HALF_OPEN:
            return
        health = self._health(slot)
        for listener in self.listeners:
            try:
                listener(health)
            except Exception:  # a view's hook must not break a fetch
                log.exception("market-data health listener failed")

    def observed_latencies(self) -> dict[str, list[float]]:
        """Per provider, the request latencies since the last call (for a histogram)."""
        out = {}
        for slot in self._unique_slots():
            out[slot.source.name], slot.latencies = slot.latencies, []
        return out

    # -- the request ---------------------------------------------------------------------
    async def fetch(
        self,
        key: str,
        timeframe: Timeframe,
        start: datetime,
        end: datetime,
        *,
        progress: Progress | None = None,
        resume: bool = True,
        repair: bool = False,
    ) -> FetchReport:
        """Fetch ``[start, end)`` into the store; return what was stored and what was not.

        ``resume`` skips trading days the store already went through; ``repair`` fetches
        the incomplete ones again (a day short of its session's bars).
        """
        if self.store is None:
            raise NoProvider("no history store (open a profile database)")
        if start.tzinfo is None or end.tzinfo is None:
            raise ValueError("history ranges need timezone-aware times")
        now = self.clock.now()
        end = min(end, now)
        report = FetchReport(key, timeframe)
        if end <= start:
            return report
        pending, days = await self._pending(key, timeframe, start, end, resume, repair, report)
        total = max(len(days), 1)
        done_days: set[date] = set()

        def advance(lo: datetime, hi: datetime, provider: str) -> None:
            done_days.update(d for d in days if lo <= _midnight(d) < hi)
            if progress is not None:
                progress(min(len(done_days), total), total,
                         f"{key} {timeframe.value} to {hi.astimezone(IST):%Y-%m-%d} "
                         f"({provider})")

        notes: list[str] = []
        for slot in self._slots:
            if not pending:
                break
            pending = await self._serve(slot, key, timeframe, pending, now, report, notes,
                                        days, advance)
        why = "; ".join(dict.fromkeys(notes)) or "no provider configured"
        report.unserved.extend((r, why) for r in pending)
        return report

    async def _pending(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime, resume: bool,
        repair: bool, report: FetchReport,
    ) -> tuple[list[Range], list[date]]:
        """The sub-ranges still to fetch and the trading days the request spans."""
        store = self.store
        assert store is not None
        if family(key) not in INDIAN_FAMILIES:
            return [(start, end)], []
        first, last = start.astimezone(IST).date(), end.astimezone(IST).date()
        sessions = [s for s in store.calendar.sessions(first, last)
                    if s.closes_at > start and s.opens_at < end]
        days = [s.day for s in sessions]
        report.days = len(days)
        skip: set[date] = set()
        if resume or repair:
            coverage = await asyncio.to_thread(store.coverage, key, timeframe, first, last)
            fetched = await asyncio.to_thread(store.fetched_days, key, timeframe, first, last)
            complete = {c.day for c in coverage if c.complete}
            skip = complete if repair else complete | fetched
        todo = [d for d in days if d not in skip]
        report.skipped = len(days) - len(todo)
        ranges: list[Range] = []
        for d in todo:
            lo, hi = max(_midnight(d), start), min(_midnight(d + timedelta(days=1)), end)
            if ranges and _is_next_session(store, ranges[-1][1], d):
                ranges[-1] = (ranges[-1][0], hi)
            else:
                ranges.append((lo, hi))
        return ranges, days

    async def _serve(
        self, slot: _Slot, key: str, timeframe: Timeframe, pending: list[Range], now: datetime,
        report: FetchReport, notes: list[str], days: list[date],
        advance: Callable[[datetime, datetime, str], None],
    ) -> list[Range]:
        """Let one provider serve what it can of ``pending``; return what is left."""
        source = slot.source
        info = source.info
        left: list[Range] = []
        for lo, hi in pending:
            why = info.covers(key, timeframe, hi - timedelta(microseconds=1), now)
            window = info.intervals.get(timeframe)
            if why is None and window is not None and window.lookback is not None:
                # Serve the recent part only, from the first midnight inside the window (a
                # margin against the provider's clock); the older part goes on down the list.
                oldest = now - window.lookback
                oldest = _midnight(oldest.astimezone(IST).date() + timedelta(days=1))
                if oldest >= hi:
                    why = f"keeps {timeframe.value} candles for {window.lookback.days} days only"
                elif oldest > lo:
                    notes.append(f"{source.name} keeps {timeframe.value} candles for "
                                 f"{window.lookback.days} days only")
                    left.append((lo, oldest))
                    lo = oldest
            if why is not None:
                notes.append(f"{source.name} {why}")
                left.append((lo, hi))
                continue
            rest = await self._fetch_chunks(slot, key, timeframe, lo, hi, report, days, advance)
            if rest:
                left.extend(rest)
                notes.append(report.errors[-1] if report.errors else source.name)
        return _merge(sorted(left))

    async def _fetch_chunks(
        self, slot: _Slot, key: str, timeframe: Timeframe, lo: datetime, hi: datetime,
        report: FetchReport, days: list[date],
        advance: Callable[[datetime, datetime, str], None],
    ) -> list[Range]:
        """Fetch and store ``[lo, hi)`` chunk by chunk; return what is left for the next
        provider: from the first failed chunk on, and any trading day that came back empty."""
        source = cast(HistorySource, slot.source)
        store = self.store
        assert store is not None
        left: list[Range] = []
        for c_lo, c_hi in source.info.chunks(timeframe, lo, hi):
            chunk_days = [d for d in days if c_lo <= _midnight(d) < c_hi]
            if days and not chunk_days:
                continue  # only holidays and weekends: nothing to ask
            answer = await self._ask(slot, partial(source.candles, key, timeframe, c_lo, c_hi))
            if isinstance(answer, _Declined):
                report.errors.append(answer.message)
                return [*left, (c_lo, hi)]
            bars = [b for b in answer if c_lo <= b.start < c_hi]
            try:
                stored = await asyncio.to_thread(
                    store.write, bars, source.name, self.clock.now(), days=chunk_days)
            except BadHistory as exc:
                report.errors.append(
                    self._failed(slot, ProviderError(source.name, f"bad data: {exc}")))
                return [*left, (c_lo, hi)]
            served = {b.start.astimezone(IST).date() for b in bars}
            for day in chunk_days:
                if day not in served:  # the next provider may have it
                    report.errors.append(f"{source.name}: nothing for {day.isoformat()}")
                    left.append((max(_midnight(day), c_lo),
                                 min(_midnight(day + timedelta(days=1)), c_hi)))
            self._succeeded(slot)
            report.stored += stored
            if stored:
                report.by_provider[source.name] += stored
            advance(c_lo, c_hi, source.name)
        return left

    async def _ask(self, slot: _Slot, call: Callable[[], Awaitable[T]]) -> T | _Declined:
        """One request to ``slot``'s provider behind its circuit breaker and daily quota,
        with its latency kept. A refusal or failure comes back as the message to report;
        success is the caller's to count (``_succeeded``), after it has checked the data."""
        source = slot.source
        if not slot.breaker.allow():
            return _Declined(f"{source.name}: circuit open ({slot.breaker.reason}); "
                             f"retry in {slot.breaker.retry_in():.0f} s")
        today = self.clock.now().astimezone(IST).date().isoformat()
        if not await slot.bucket.take(today):
            return _Declined(self._failed(slot, QuotaExhausted(
                source.name, f"the day's {source.info.rate.per_day} requests are used")))
        slot.requests += 1
        began = self._monotonic()
        try:
            return await call()
        except (HistoryNotCovered, NoData, InstrumentUnknown) as exc:
            # An answer, not a failure: the provider is healthy, the request passes on.
            slot.breaker.release()
            return _Declined(_named(source.name, exc))
        except BrokerError as exc:  # ours and a broker provider's alike
            return _Declined(self._failed(slot, exc))
        finally:
            slot.last_latency = self._monotonic() - began
            slot.latencies.append(slot.last_latency)

    def _succeeded(self, slot: _Slot) -> None:
        before = slot.breaker.state
        slot.breaker.success()
        self._notify(slot, before)

    def _failed(self, slot: _Slot, exc: BrokerError) -> str:
        """Count a failure on ``slot``'s breaker; return the message to report."""
        slot.failures += 1
        retry_after = exc.retry_after if isinstance(exc, RateLimited) else None
        trips = getattr(exc, "trips", isinstance(exc, _TRIPS))
        message = _named(slot.source.name, exc)
        before = slot.breaker.state
        slot.breaker.failure(message, trips=trips, retry_after=retry_after)
        self._notify(slot, before)
        log.warning("market data: %s", message)
        return message

    # -- reading with fetch ----------------------------------------------------------------
    async def candles(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime,
        *, progress: Progress | None = None,
    ) -> list[Bar]:
        """Stored candles of ``[start, end)``, fetching what is missing first."""
        if self.store is None:
            raise NoProvider("no history store (open a profile database)")
        report = await self.fetch(key, timeframe, start, end, progress=progress)
        bars = await asyncio.to_thread(self.store.bars, key, timeframe, start, end)
        if not bars and report.unserved:
            raise NoProvider(_unserved_text(key, timeframe, report))
        return bars

    async def recent(
        self, key: str, timeframe: Timeframe, count: int, end: datetime,
        *, progress: Progress | None = None,
    ) -> list[Bar]:
        """The newest ``count`` closed candles before ``end``, fetching back as far as needed.

        The span is estimated from the session length, fetched, and widened once if the
        store still holds fewer (holidays, a short provider answer).
        """
        store = self.store
        if store is None:
            raise NoProvider("no history store (open a profile database)")
        have = await asyncio.to_thread(store.last, key, timeframe, count, end)
        if len(have) >= count or not self._slots:
            return have
        per_day = {Timeframe.S1: 22_500, Timeframe.M1: 375, Timeframe.M5: 75,
                   Timeframe.M15: 25, Timeframe.M30: 13, Timeframe.H1: 7,
                   Timeframe.D1: 1}[timeframe]
        sessions = -(-count // per_day) + 1
        span = timedelta(days=int(sessions * 7 / 5) + 4)
        report = FetchReport(key, timeframe)
        for _ in range(2):
            report = await self.fetch(key, timeframe, end - span, end, progress=progress)
            have = await asyncio.to_thread(store.last, key, timeframe, count, end)
            if len(have) >= count or report.unserved:
                break
            span *= 2
        if not have and report.unserved:
            raise NoProvider(_unserved_text(key, timeframe, report))
        return have

    # -- snapshot quotes ---------------------------------------------------------------------
    async def quote(self, key: str) -> Snapshot:
        """A delayed snapshot of ``key`` from the first quote provider that can give one.

        Never a live price: ``require_live`` refuses it for orders and protection bands.
        """
        reasons: list[str] = []
        for slot in self._quote_slots:
            source = cast(QuoteSource, slot.source)
            answer = await self._ask(slot, partial(source.quote, key))
            if isinstance(answer, _Declined):
                reasons.append(answer.message)
                continue
            self._succeeded(slot)
            return answer
        if not self._quote_slots:
            raise NoProvider("no quote provider configured: add nse or yfinance to "
                             "marketdata.providers (docs/data.md)")
        raise NoProvider(f"no quote for {key}: " + "; ".join(reasons))

    async def close(self) -> None:
        for slot in self._unique_slots():
            try:
                await slot.source.close()
            except Exception:  # closing is best effort
                log.debug("closing %s failed", slot.source.name, exc_info=True)


    def _unique_slots(self) -> list[_Slot]:
        seen: dict[int, _Slot] = {}
        for slot in [*self._slots, *self._quote_slots]:
            seen.setdefault(id(slot), slot)
        return list(seen.values())


# A broker's answers that mean "stop asking for a while" (ours carry ``trips``).
_TRIPS = (RateLimited, SessionExpired, PermissionDenied, CredentialsMissing)


def _named(provider: str, exc: BaseException) -> str:
    text = str(exc)
    return text if text.startswith(f"{provider}:") else f"{provider}: {text}"


def _merge(ranges: list[Range]) -> list[Range]:
    out: list[Range] = []
    for lo, hi in ranges:
        if out and lo <= out[-1][1]:
            out[-1] = (out[-1][0], max(hi, out[-1][1]))
        else:
            out.append((lo, hi))
    return out


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=IST)


def _is_next_session(store: HistoryStore, previous_end: datetime, day: date) -> bool:
    prev_day = (previous_end - timedelta(microseconds=1)).astimezone(IST).date()
    return store.calendar.next_trading_day(prev_day) == day


def _unserved_text(key: str, timeframe: Timeframe, report: FetchReport) -> str:
    parts = []
    for (lo, hi), why in report.unserved:
        parts.append(f"{lo.astimezone(IST):%Y-%m-%d} to {hi.astimezone(IST):%Y-%m-%d}: {why}")
    text = f"no {timeframe.value} history for {key}: " + "; ".join(parts)
    if family(key) == NFO and timeframe is not Timeframe.D1:
        text += (" (F&O intraday history comes only from a logged-in broker; the only free "
                 "source is NSE's end-of-day bhavcopy)")
    return text
