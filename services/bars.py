"""Bars from ticks, bucketed on the NSE session grid.

Intraday buckets are anchored to the session open (09:15 IST), not to the clock hour, because
that is how NSE charts are drawn: the 1h bars are 09:15-10:15, ..., and the last one of the
day is the short 15:15-15:30 bar. Times after the close (only seen when the simulator runs
``always_open``) are bucketed from 15:30 and times before the open from midnight, so buckets
never straddle the session edges. A daily bar is stamped 09:15 IST of its date and covers the
whole date.

Volume comes from differences of the cumulative day volume carried by every tick, not from
``last_quantity``: the tick topic coalesces per instrument, so a slow consumer misses ticks,
and only the cumulative figure stays right across the gaps.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from decimal import Decimal

from services.bar_history import ClosedBars
from services.bus import BARS, TICKS, EventBus, SubscriberLagged, closed_bars
from services.clock import IST, MARKET_CLOSE, MARKET_OPEN, Clock, is_trading_day, to_ist
from services.domain import LIVE_TIMEFRAMES, Bar, Tick, Timeframe
from services.tasks import cancel_and_wait

log = logging.getLogger(__name__)

SESSION_SECONDS = 22_500  # 09:15 to 15:30
# Closed bars packed per tick batch (services/bar_history.py): a minute boundary closes a
# bar for each of thousands of instruments, and packing them all at once stalled the loop.
PACK_PER_BATCH = 32


def _at(day: date, when: time) -> datetime:
    return datetime.combine(day, when, tzinfo=IST)


def bucket_start(ts: datetime, timeframe: Timeframe) -> datetime:
    """Return the IST start of the bucket of ``timeframe`` holding ``ts``."""
    local = to_ist(ts)
    day = local.date()
    if timeframe is Timeframe.D1:
        return _at(day, MARKET_OPEN)
    now_t = local.time()
    if now_t < MARKET_OPEN:
        anchor = _at(day, time(0, 0))
    elif now_t < MARKET_CLOSE:
        anchor = _at(day, MARKET_OPEN)
    else:
        anchor = _at(day, MARKET_CLOSE)
    delta = local.replace(microsecond=0) - anchor
    secs = delta.days * 86_400 + delta.seconds
    size = timeframe.seconds
    return anchor + timedelta(seconds=(secs // size) * size)


def bucket_end(start: datetime, timeframe: Timeframe) -> datetime:
    """Return the end (exclusive) of the bucket that starts at ``start``."""
    local = to_ist(start)
    day = local.date()
    midnight = _at(day + timedelta(days=1), time(0, 0))
    if timeframe is Timeframe.D1:
        return midnight
    now_t = local.time()
    if now_t < MARKET_OPEN:
        edge = _at(day, MARKET_OPEN)
    elif now_t < MARKET_CLOSE:
        edge = _at(day, MARKET_CLOSE)
    else:
        edge = midnight
    return min(local + timedelta(seconds=timeframe.seconds), edge)


def _previous_trading_day(day: date) -> date:
    day -= timedelta(days=1)
    while not is_trading_day(day):
        day -= timedelta(days=1)
    return day


def _last_bucket_of_session(day: date, timeframe: Timeframe) -> datetime:
    if timeframe is Timeframe.D1:
        return _at(day, MARKET_OPEN)
    size = timeframe.seconds
    return _at(day, MARKET_OPEN) + timedelta(seconds=((SESSION_SECONDS - 1) // size) * size)


def last_closed_session_bucket(end: datetime, timeframe: Timeframe) -> datetime:
    """Return the newest in-session bucket that has fully ended at ``end``.

    A daily bar counts as ended once its session closed at 15:30.
    """
    local = to_ist(end)
    day = local.date()
    if is_trading_day(day) and local.time() >= MARKET_CLOSE:
        return _last_bucket_of_session(day, timeframe)
    if is_trading_day(day) and local.time() >= MARKET_OPEN:
        if timeframe is Timeframe.D1:
            return _at(_previous_trading_day(day), MARKET_OPEN)
        return previous_session_bucket(bucket_start(local, timeframe), timeframe)
    return _last_bucket_of_session(_previous_trading_day(day), timeframe)


def previous_session_bucket(start: datetime, timeframe: Timeframe) -> datetime:
    """Return the in-session bucket before the one at ``start``, skipping nights and weekends."""
    local = to_ist(start)
    if timeframe is Timeframe.D1:
        return _at(_previous_trading_day(local.date()), MARKET_OPEN)
    if local > _at(local.date(), MARKET_OPEN):
        return local - timedelta(seconds=timeframe.seconds)
    return _last_bucket_of_session(_previous_trading_day(local.date()), timeframe)


def session_buckets(end: datetime, timeframe: Timeframe, count: int) -> list[datetime]:
    """Return the ``count`` newest ended in-session bucket starts before ``end``, oldest first."""
    if count <= 0:
        return []
    starts = [last_closed_session_bucket(end, timeframe)]
    while len(starts) < count:
        starts.append(previous_session_bucket(starts[-1], timeframe))
    starts.reverse()
    return starts


def aggregate(minutes: Iterable[Bar], timeframe: Timeframe, now: datetime) -> list[Bar]:
    """Roll closed 1-minute bars up into closed ``timeframe`` bars (for candle repair).

    Only buckets that ended by ``now`` and whose first minute is present are returned: a
    bucket missing its opening minute would get a wrong open.
    """
    buckets: dict[datetime, list[Bar]] = {}
    for bar in sorted(minutes, key=lambda b: b.start):
        buckets.setdefault(bucket_start(bar.start, timeframe), []).append(bar)
    rolled: list[Bar] = []
    for start, group in buckets.items():
        if bucket_end(start, timeframe) > now or group[0].start != start:
            continue
        rolled.append(
            Bar(
                group[0].key,
                timeframe,
                start,
                group[0].open,
                max(b.high for b in group),
                min(b.low for b in group),
                group[-1].close,
                sum(b.volume for b in group),
                closed=True,
            )
        )
    return rolled


# ``Bar`` is a frozen dataclass: its generated ``__init__`` goes through ``object.__setattr__``
# once per field, which made freezing a live bar (3 to 5 of them per tick at 50,000 ticks/s,
# one per timeframe) half of the builder's time. Its slots' own setters do the same work
# at half the cost; tests/test_bars.py checks the result equals ``Bar(...)`` field by field.
_BAR_FIELDS = ("key", "timeframe", "start", "open", "high", "low", "close", "volume", "closed")
assert tuple(f.name for f in fields(Bar)) == _BAR_FIELDS, "Bar changed: update _new_bar"
(
    _set_key, _set_timeframe, _set_start, _set_open, _set_high, _set_low, _set_close,
    _set_volume, _set_closed,
) = (getattr(Bar, name).__set__ for name in _BAR_FIELDS)  # fmt: skip
_new = object.__new__


def _new_bar(
    key: str,
    timeframe: Timeframe,
    start: datetime,
    open_: Decimal,
    high: Decimal,
    low: Decimal,
    close: Decimal,
    volume: int,
    closed: bool,
) -> Bar:
    """``Bar(...)`` for the builder's hot path (no validation is skipped: Bar has none)."""
    bar: Bar = _new(Bar)
    _set_key(bar, key)
    _set_timeframe(bar, timeframe)
    _set_start(bar, start)
    _set_open(bar, open_)
    _set_high(bar, high)
    _set_low(bar, low)
    _set_close(bar, close)
    _set_volume(bar, volume)
    _set_closed(bar, closed)
    return bar


# eq=False: a live bar is known by its identity (the batch's "touched" set is keyed by it).
@dataclass(slots=True, eq=False)
class _LiveBar:
    key: str
    timeframe: Timeframe
    start: datetime
    end: datetime
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal
    volume: int

    def freeze(self, closed: bool) -> Bar:
        return _new_bar(
            self.key,
            self.timeframe,
            self.start,
            self.open,
            self.high,
            self.low,
            self.close,
            self.volume,
            closed,
        )


_NEVER = datetime.max.replace(tzinfo=IST)


class _Slots:
    """One instrument's live bars, one slot per timeframe, and the span they all cover.

    A tick inside ``[lo, hi)`` (every bar's bucket holds it: the common case, all but the
    first tick of a minute) updates every bar without testing each bucket. ``lo`` is
    ``_NEVER`` while a slot is empty, so such a tick takes the per-slot path.
    """

    __slots__ = ("bars", "full", "hi", "lo")

    def __init__(self, count: int) -> None:
        self.bars: list[_LiveBar | None] = [None] * count
        self.full: tuple[_LiveBar, ...] = ()  # the bars, once no slot is empty
        self.lo = _NEVER
        self.hi = _NEVER

    def refresh(self) -> None:
        full = tuple(live for live in self.bars if live is not None)
        if len(full) < len(self.bars) or not full:
            self.full, self.lo, self.hi = (), _NEVER, _NEVER
            return
        self.full = full
        self.lo = max(live.start for live in full)
        self.hi = min(live.end for live in full)


class BarBuilder:
    """Aggregates ticks into OHLCV bars for several timeframes and publishes them on BARS.

    Volume of the first tick seen for an instrument on a day is that tick's ``last_quantity``,
    not its cumulative volume: when the terminal joins mid-session the cumulative figure holds
    the whole morning, and putting it into one bar would draw a spike that never traded. When
    the first tick seen is the day's first trade the two are equal, so nothing is lost then.
    A cumulative volume that goes down (a feed restart) is treated the same way.

    Ticks older than the bar being built, or for a bucket already closed, are dropped for that
    timeframe: a closed bar is final for everyone who received it.
    """

    def __init__(
        self,
        bus: EventBus,
        timeframes: Iterable[Timeframe] = LIVE_TIMEFRAMES,
        max_bars: int = 2000,
        *,
        clock: Clock | None = None,
        stale_check_seconds: float = 1.0,
    ) -> None:
        self._bus = bus
        self._timeframes = tuple(timeframes)
        self._tf_index = {tf: i for i, tf in enumerate(self._timeframes)}
        self._max_bars = max_bars
        self._clock = clock
        self._stale_check = stale_check_seconds
        self._live: dict[tuple[str, Timeframe], _LiveBar] = {}
        # The same live bars per instrument, one slot per timeframe: one lookup per tick on
        # the hot path instead of one tuple-keyed lookup per timeframe.
        self._slots: dict[str, _Slots] = {}
        # Packed (services/bar_history.py): every ticking instrument keeps today's bars.
        self._history: dict[tuple[str, Timeframe], ClosedBars] = {}
        self._to_pack: deque[ClosedBars] = deque()
        # Per instrument: the IST day's [start, end) and the last cumulative volume seen.
        self._cumulative: dict[str, list[object]] = {}
        self.dropped_ticks = 0

    @property
    def timeframes(self) -> tuple[Timeframe, ...]:
        return self._timeframes

    def _volume_delta(self, tick: Tick) -> int:
        ts = tick.ts
        seen = self._cumulative.get(tick.key)
        if seen is not None and seen[0] <= ts < seen[1]:  # type: ignore[operator]
            previous: int = seen[2]  # type: ignore[assignment]
            seen[2] = tick.volume
            if tick.volume >= previous:
                return tick.volume - previous
        else:
            midnight = _at(to_ist(ts).date(), time(0, 0))
            self._cumulative[tick.key] = [midnight, midnight + timedelta(days=1), tick.volume]
        # The first tick of the day for this instrument, or a feed restart (volume went down).
        return min(tick.last_quantity, tick.volume) if tick.volume else tick.last_quantity

    def _history_of(self, key: str, timeframe: Timeframe) -> ClosedBars:
        hist = self._history.get((key, timeframe))
        if hist is None:
            hist = self._history[(key, timeframe)] = ClosedBars(key, timeframe, self._max_bars)
        return hist

    def _keep(self, hist: ClosedBars, bar: Bar) -> None:
        hist.append(bar)
        if not hist.queued:
            hist.queued = True
            self._to_pack.append(hist)

    def pack(self, budget: int) -> int:
        """Pack up to ``budget`` closed bars into their compact store; return how many."""
        done = 0
        queue = self._to_pack
        while queue and done < budget:
            hist = queue[0]
            done += hist.pack(budget - done)
            if not hist.unpacked:
                hist.queued = False
                queue.popleft()
        return done

    def _set_live(self, key: str, timeframe: Timeframe, live: _LiveBar | None) -> None:
        slots = self._slots.get(key)
        if slots is None:
            slots = self._slots[key] = _Slots(len(self._timeframes))
        slots.bars[self._tf_index[timeframe]] = live
        slots.refresh()
        if live is None:
            self._live.pop((key, timeframe), None)
        else:
            self._live[(key, timeframe)] = live

    def _apply(
        self, tick: Tick, delta: int, touched: dict[_LiveBar, None], closed: list[Bar]
    ) -> None:
        """Fold ``tick`` in bar by bar (the tick opens or leaves at least one bucket).

        Live bars are collected as themselves and frozen once at the end of the batch: at
        5,000 ticks/s over five timeframes, freezing per tick built 25,000 records a second
        that the next tick of the same instrument superseded at once.
        """
        price = tick.last_price
        ts = tick.ts
        slots = self._slots.get(tick.key)
        if slots is None:
            slots = self._slots[tick.key] = _Slots(len(self._timeframes))
        for i, live in enumerate(slots.bars):
            if live is not None and live.start <= ts < live.end:
                if price > live.high:
                    live.high = price
                elif price < live.low:
                    live.low = price
                live.close = price
                live.volume += delta
                touched[live] = None
                continue
            self._roll(tick, self._timeframes[i], live, delta, touched, closed)

    def _roll(
        self,
        tick: Tick,
        tf: Timeframe,
        live: _LiveBar | None,
        delta: int,
        touched: dict[_LiveBar, None],
        closed: list[Bar],
    ) -> None:
        """The tick is outside the bar being built: close it and open the next, or drop it."""
        ts = tick.ts
        price = tick.last_price
        if live is not None and ts < live.start:
            self.dropped_ticks += 1
            return
        start = bucket_start(ts, tf)
        hist = self._history_of(tick.key, tf)
        last = hist.last_start()
        if last is not None and start <= last:
            self.dropped_ticks += 1
            return
        if live is not None:
            done = live.freeze(True)
            self._keep(hist, done)
            closed.append(done)
            touched.pop(live, None)  # its final state goes out as the closed bar
        end = bucket_end(start, tf)
        live = _LiveBar(tick.key, tf, start, end, price, price, price, price, delta)
        self._set_live(tick.key, tf, live)
        touched[live] = None

    def on_tick(self, tick: Tick) -> None:
        self.on_ticks([tick])

    def on_ticks(self, ticks: Iterable[Tick]) -> None:
        """Fold a batch in and publish each changed bar once: the bars it closed, then the
        latest state of each live bar it touched.

        The loop is written out for the common tick (at 50,000 ticks/s it was most of the
        event loop's time): one lookup for the day's volume, one for the live bars, and when
        every bucket holds the tick, no per-bucket test.
        """
        touched: dict[_LiveBar, None] = {}
        closed: list[Bar] = []
        cumulative = self._cumulative.get
        slots_of = self._slots.get
        apply = self._apply
        for tick in ticks:
            ts = tick.ts
            volume = tick.volume
            seen = cumulative(tick.key)
            if seen is not None and seen[0] <= ts < seen[1] and volume >= seen[2]:  # type: ignore[operator]
                delta = volume - seen[2]  # type: ignore[operator]
                seen[2] = volume
            else:
                delta = self._volume_delta(tick)
            slots = slots_of(tick.key)
            if slots is not None and slots.lo <= ts < slots.hi:
                price = tick.last_price
                for live in slots.full:
                    if price > live.high:
                        live.high = price
                    elif price < live.low:
                        live.low = price
                    live.close = price
                    live.volume += delta
                    touched[live] = None
            else:
                apply(tick, delta, touched, closed)
        # Live-bar updates are built only for a subscriber that takes them (a chart); the
        # recorder and the signal service take closed bars only.
        if touched and self._bus.takes_other_than(BARS, closed_bars):
            closed.extend([live.freeze(False) for live in touched])
        if closed:
            self._bus.publish_many(BARS, closed)
        self.pack(PACK_PER_BATCH)

    def close_stale(self, now: datetime) -> list[Bar]:
        """Close and publish every live bar whose bucket ended by ``now``."""
        closed: list[Bar] = []
        for slot, live in list(self._live.items()):
            if live.end <= now:
                bar = live.freeze(True)
                self._keep(self._history_of(*slot), bar)
                self._set_live(*slot, None)
                closed.append(bar)
        if closed:
            self._bus.publish_many(BARS, closed)
        return closed

    def bars(self, key: str, timeframe: Timeframe) -> list[Bar]:
        """Return closed history oldest first, then the bar being built (``closed=False``)."""
        result = list(self._history.get((key, timeframe), ()))
        live = self._live.get((key, timeframe))
        if live is not None:
            result.append(live.freeze(False))
        return result

    def seed(self, key: str, timeframe: Timeframe, bars: Iterable[Bar]) -> None:
        """Preload history (e.g. ``MarketSimulator.history``); replaces what was there."""
        ordered = sorted(bars, key=lambda b: b.start)
        live = self._live.get((key, timeframe))
        if live is not None:
            ordered = [b for b in ordered if b.start < live.start]
        hist = self._history_of(key, timeframe)
        hist.clear()
        for bar in ordered:
            self._keep(hist, bar)

    async def _stale_loop(self, clock: Clock) -> None:
        while True:
            await asyncio.sleep(self._stale_check)
            self.close_stale(clock.now())

    async def run(self) -> None:
        """Consume TICKS until cancelled; with a clock, also close ended bars every second."""
        sub = self._bus.subscribe(TICKS, "bar-builder", lossless=True)
        stale = None
        if self._clock is not None:
            stale = asyncio.create_task(self._stale_loop(self._clock), name="bars-stale")
        try:
            while True:
                try:
                    self.on_ticks(await sub.next_batch())
                except SubscriberLagged:
                    # Bars keep building from the next tick; the gap shows as a missed high/low.
                    log.warning("bar builder fell behind the feed; some ticks were skipped")
        finally:
            sub.close()
            await cancel_and_wait([stale])
