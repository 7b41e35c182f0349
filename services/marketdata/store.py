"""The history store: fetched candles in the profile database, checked before they are kept.

Candles are unadjusted (no split or dividend back-adjustment) and carry their provenance:
the provider that served them and when. Everything is on the IST session grid of the
exchange calendar, and a batch is refused whole, with a message naming the first bad bar,
when any bar in it is off that grid. That catches the recurring faults of free data (a
server in another timezone shifting every bar by hours, a daily bar stamped on the day
before, an extra day, a holiday with bars, NaN prices, high below low) before anything of
the batch is written.

Completeness is kept per (instrument, interval, trading day): bars stored against bars the
session should have (375 one-minute bars on a regular day, fewer on a special session). A
fetch resumes by skipping the complete days, and ``gaps`` lists what a repair must fetch.

Blocking (SQLite): call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation

from services.calendar import IST, ExchangeCalendar, Session, default_calendar
from services.domain import Bar, Timeframe
from services.marketdata.coverage import INDIAN_FAMILIES, family
from services.storage import codec
from services.storage.database import Database
from services.storage.sqlcipher import Connection

_INSERT = (
    "INSERT OR REPLACE INTO history_bars "
    "(key, timeframe, start_ns, open, high, low, close, volume, provider, fetched_ns) "
    "VALUES (?,?,?,?,?,?,?,?,?,?)"
)
_UPSERT_DAY = (
    "INSERT OR REPLACE INTO history_days "
    "(key, timeframe, day, bars, expected, provider, fetched_ns) VALUES (?,?,?,?,?,?,?)"
)


_IST_OFFSET = 19_800  # seconds east of UTC; India has no daylight saving
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def _on_grid(epoch: int, window: tuple[date, int, int], size: int, daily: bool) -> bool:
    _, opens, closes = window
    if daily:
        return epoch == opens
    return opens <= epoch < closes and (epoch - opens) % size == 0


class BadHistory(ValueError):
    """A batch of candles that is not fit to keep; nothing of it was stored."""


@dataclass(frozen=True, slots=True)
class DayCoverage:
    """What the store holds of one trading day of one instrument and interval."""

    day: date
    bars: int
    expected: int
    provider: str | None = None

    @property
    def complete(self) -> bool:
        return self.bars >= self.expected


def expected_bars(session: Session, timeframe: Timeframe) -> int:
    """Bars a complete ``session`` has at ``timeframe``: 375 one-minute bars on a regular day."""
    if timeframe is Timeframe.D1:
        return 1
    seconds = session.minutes * 60
    return -(-seconds // timeframe.seconds)


def _check_price(bar: Bar, value: Decimal) -> None:
    try:
        ok = value.is_finite() and value > 0
    except InvalidOperation:
        ok = False
    if not ok:
        raise BadHistory(f"{bar.key} {bar.timeframe.value} at {bar.start.isoformat()}: "
                         f"price {value} is not a positive finite number")


def check_bar(bar: Bar, session: Session | None, *, grid: bool = True) -> None:
    """Refuse a bar off the session grid or with impossible prices (raises ``BadHistory``).

    ``grid`` False for instruments NSE's calendar does not govern (US, FX): prices only.
    """
    where = f"{bar.key} {bar.timeframe.value} at {bar.start.isoformat()}"
    if bar.start.tzinfo is None:
        raise BadHistory(f"{where}: naive time (history is kept in IST, aware times only)")
    if grid:
        _check_grid(bar, session, where)
    for value in (bar.open, bar.high, bar.low, bar.close):
        _check_price(bar, value)
    if not bar.low <= min(bar.open, bar.close) or not bar.high >= max(bar.open, bar.close):
        raise BadHistory(f"{where}: high/low do not contain open/close "
                         f"(O {bar.open} H {bar.high} L {bar.low} C {bar.close})")
    if not isinstance(bar.volume, int) or bar.volume < 0 or not math.isfinite(bar.volume):
        raise BadHistory(f"{where}: volume {bar.volume!r} is not a whole number >= 0")


def _check_grid(bar: Bar, session: Session | None, where: str) -> None:
    local = bar.start.astimezone(IST)
    if session is None:
        raise BadHistory(f"{where}: {local.date().isoformat()} is not a trading day "
                         "(a shifted or extra day)")
    if bar.timeframe is Timeframe.D1:
        if local.time() != session.open:
            raise BadHistory(f"{where}: a daily bar is stamped at the session open "
                             f"({session.open:%H:%M} IST), not {local.time():%H:%M}")
        return
    t = local.time()
    if not session.open <= t < session.close:
        raise BadHistory(f"{where}: {t:%H:%M} IST is outside the session "
                         f"{session.open:%H:%M}-{session.close:%H:%M} (a shifted timezone?)")
    offset = (local - session.opens_at).total_seconds()
    if offset % bar.timeframe.seconds:
        raise BadHistory(f"{where}: not on the {bar.timeframe.value} grid from "
                         f"{session.open:%H:%M} IST")


class HistoryStore:
    def __init__(self, db: Database, calendar: ExchangeCalendar | None = None) -> None:
        self._db = db
        self._calendar = calendar

    @property
    def calendar(self) -> ExchangeCalendar:
        return self._calendar or default_calendar()

    # -- writing -------------------------------------------------------------------------
    def validate(self, bars: Sequence[Bar]) -> dict[date, int]:
        """Check a batch; return how many bars it has per IST trading day."""
        return self._checked(bars, "", 0)[0]

    def _checked(
        self, bars: Sequence[Bar], provider: str, fetched_ns: int
    ) -> tuple[dict[date, int], list[tuple[object, ...]]]:
        """One pass over a batch: the checks, the per-day counts and the rows to insert.

        The common case is arithmetic on epoch seconds (a year of minutes is ~93,000 bars);
        any bar that fails a quick test goes through ``check_bar`` for its message.
        """
        per_day: dict[date, int] = {}
        rows: list[tuple[object, ...]] = []
        if not bars:
            return per_day, rows
        key, timeframe = bars[0].key, bars[0].timeframe
        tf_value, size = timeframe.value, timeframe.seconds
        daily = timeframe is Timeframe.D1
        grid = family(key) in INDIAN_FAMILIES
        seen: set[int] = set()
        # IST day ordinal -> (day, session open epoch, session close epoch) or None
        windows: dict[int, tuple[date, int, int] | None] = {}
        for bar in bars:
            start = bar.start
            if bar.key != key or bar.timeframe is not timeframe:
                raise BadHistory(f"one batch holds one instrument and interval: {key} "
                                 f"{tf_value} and {bar.key} {bar.timeframe.value}")
            if start.tzinfo is None or start.microsecond:
                check_bar(bar, None, grid=False)  # naive: refused with its message
            epoch = int(start.timestamp())
            ordinal = (epoch + _IST_OFFSET) // 86_400
            window: tuple[date, int, int] | None = None
            if grid:
                if ordinal not in windows:
                    windows[ordinal] = self._window(ordinal)
                window = windows[ordinal]
                if window is None or not _on_grid(epoch, window, size, daily):
                    check_bar(bar, self.calendar.session(start.astimezone(IST).date()))
                    raise BadHistory(f"{key} {tf_value} at {start.isoformat()}: off the grid")
            o, h, lo, c = bar.open, bar.high, bar.low, bar.close
            try:
                fine = (lo > 0 and lo <= o and lo <= c and o <= h and c <= h
                        and h.is_finite() and type(bar.volume) is int and bar.volume >= 0)
            except ArithmeticError:  # NaN in a comparison
                fine = False
            if not fine:
                check_bar(bar, None, grid=False)
                raise BadHistory(f"{key} {tf_value} at {start.isoformat()}: bad prices")
            if epoch in seen:
                raise BadHistory(f"{key} {tf_value}: two bars at {start.isoformat()}")
            seen.add(epoch)
            if window is not None:
                day = window[0]
                per_day[day] = per_day.get(day, 0) + 1
            ns = codec.to_ns(start) if start.microsecond else epoch * 1_000_000_000
            rows.append((key, tf_value, ns, str(o), str(h), str(lo),
                         str(c), bar.volume, provider, fetched_ns))
        return per_day, rows

    def _window(self, ordinal: int) -> tuple[date, int, int] | None:
        day = date.fromordinal(ordinal + _EPOCH_ORDINAL)
        session = self.calendar.session(day)
        if session is None:
            return None
        return day, int(session.opens_at.timestamp()), int(session.closes_at.timestamp())

    def write(
        self,
        bars: Sequence[Bar],
        provider: str,
        fetched_at: datetime,
        *,
        days: Iterable[date] = (),
    ) -> int:
        """Keep ``bars`` (all or nothing) and record the completeness of the days they touch.

        ``days`` are trading days the fetch covered: one that got no bar at all is recorded
        with zero bars, so a gap is remembered rather than mistaken for "never fetched".
        """
        fetched_ns = codec.to_ns(fetched_at)
        per_day, rows = self._checked(bars, provider, fetched_ns)
        if not rows:
            return 0
        touched = set(per_day) | set(days)
        with self._db.transaction() as c:
            c.executemany(_INSERT, rows)
            self._record_days(c, bars[0].key, bars[0].timeframe, touched, provider, fetched_ns)
        return len(rows)

    def record_empty(
        self, key: str, timeframe: Timeframe, days: Iterable[date], provider: str,
        fetched_at: datetime,
    ) -> None:
        """Remember that ``days`` were fetched from ``provider`` and held no bars."""
        with self._db.transaction() as c:
            self._record_days(c, key, timeframe, set(days), provider, codec.to_ns(fetched_at))

    def _record_days(
        self, conn: Connection, key: str, timeframe: Timeframe, days: set[date], provider: str,
        fetched_ns: int,
    ) -> None:
        rows = []
        for day in sorted(days):
            session = self.calendar.session(day)
            if session is None:
                continue
            lo, hi = _day_range(day)
            row = conn.execute(
                "SELECT count(*) FROM history_bars WHERE key = ? AND timeframe = ? "
                "AND start_ns >= ? AND start_ns < ?",
                (key, timeframe.value, lo, hi),
            ).fetchone()
            have = row[0] if row else 0
            rows.append((key, timeframe.value, day.isoformat(), int(have),
                         expected_bars(session, timeframe), provider, fetched_ns))
        if rows:
            conn.executemany(_UPSERT_DAY, rows)

    # -- reading -------------------------------------------------------------------------
    def bars(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[Bar]:
        """Stored candles in ``[start, end)``, oldest first, closed, IST times."""
        rows = self._db.query(
            "SELECT start_ns, open, high, low, close, volume FROM history_bars "
            "WHERE key = ? AND timeframe = ? AND start_ns >= ? AND start_ns < ? "
            "ORDER BY start_ns",
            (key, timeframe.value, codec.to_ns(start), codec.to_ns(end)),
        )
        return [
            Bar(key, timeframe, codec.from_ns(r[0]).astimezone(IST), Decimal(r[1]),
                Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), int(r[5]), closed=True)
            for r in rows
        ]

    def rows(
        self, key: str, timeframe: Timeframe, start: datetime, end: datetime
    ) -> list[tuple[datetime, Decimal, Decimal, Decimal, Decimal, int, str, datetime]]:
        """Candles with provenance, for an export: (start, o, h, l, c, volume, provider,
        fetched at)."""
        rows = self._db.query(
            "SELECT start_ns, open, high, low, close, volume, provider, fetched_ns "
            "FROM history_bars WHERE key = ? AND timeframe = ? AND start_ns >= ? "
            "AND start_ns < ? ORDER BY start_ns",
            (key, timeframe.value, codec.to_ns(start), codec.to_ns(end)),
        )
        return [
            (codec.from_ns(r[0]).astimezone(IST), Decimal(r[1]), Decimal(r[2]), Decimal(r[3]),
             Decimal(r[4]), int(r[5]), str(r[6]), codec.from_ns(r[7]).astimezone(IST))
            for r in rows
        ]

    def last(self, key: str, timeframe: Timeframe, count: int, end: datetime) -> list[Bar]:
        """The newest ``count`` stored candles that start before ``end``, oldest first."""
        rows = self._db.query(
            "SELECT start_ns, open, high, low, close, volume FROM history_bars "
            "WHERE key = ? AND timeframe = ? AND start_ns < ? ORDER BY start_ns DESC LIMIT ?",
            (key, timeframe.value, codec.to_ns(end), count),
        )
        rows.reverse()
        return [
            Bar(key, timeframe, codec.from_ns(r[0]).astimezone(IST), Decimal(r[1]),
                Decimal(r[2]), Decimal(r[3]), Decimal(r[4]), int(r[5]), closed=True)
            for r in rows
        ]

    def provenance(self, key: str, timeframe: Timeframe, start: datetime) -> tuple[str, datetime]:
        rows = self._db.query(
            "SELECT provider, fetched_ns FROM history_bars WHERE key = ? AND timeframe = ? "
            "AND start_ns = ?",
            (key, timeframe.value, codec.to_ns(start)),
        )
        if not rows:
            raise KeyError(f"no stored {timeframe.value} bar of {key} at {start.isoformat()}")
        return str(rows[0][0]), codec.from_ns(int(rows[0][1]))

    def coverage(
        self, key: str, timeframe: Timeframe, first: date, last: date
    ) -> list[DayCoverage]:
        """Every trading day from ``first`` to ``last``: bars held against bars expected."""
        rows = self._db.query(
            "SELECT day, bars, expected, provider FROM history_days WHERE key = ? AND "
            "timeframe = ? AND day >= ? AND day <= ?",
            (key, timeframe.value, first.isoformat(), last.isoformat()),
        )
        known = {date.fromisoformat(r[0]): (int(r[1]), str(r[3])) for r in rows}
        out = []
        for session in self.calendar.sessions(first, last):
            have, provider = known.get(session.day, (0, None))
            out.append(DayCoverage(session.day, have, expected_bars(session, timeframe),
                                   provider))
        return out

    def fetched_days(self, key: str, timeframe: Timeframe, first: date, last: date) -> set[date]:
        """Days a fetch already went through (complete or known to be short at the source)."""
        rows = self._db.query(
            "SELECT day FROM history_days WHERE key = ? AND timeframe = ? AND day >= ? "
            "AND day <= ?",
            (key, timeframe.value, first.isoformat(), last.isoformat()),
        )
        return {date.fromisoformat(r[0]) for r in rows}

    def gaps(self, key: str, timeframe: Timeframe, first: date, last: date) -> list[DayCoverage]:
        """Trading days with fewer bars than their session should have."""
        return [d for d in self.coverage(key, timeframe, first, last) if not d.complete]

    def count(self, key: str | None = None) -> int:
        if key is None:
            return int(self._db.query("SELECT count(*) FROM history_bars")[0][0])
        return int(self._db.query("SELECT count(*) FROM history_bars WHERE key = ?", (key,))[0][0])


def _day_range(day: date) -> tuple[int, int]:
    start = datetime.combine(day, time(0, 0), tzinfo=IST)
    return codec.to_ns(start), codec.to_ns(start + timedelta(days=1))
