"""The NSE exchange calendar: which days trade, and for how long.

The clock (``is_trading_day``), the simulator, the bar builder and the history store's
completeness check all ask this module, so a holiday is a holiday everywhere at once.

Sources, in order of trust:

1. NSE's own holiday list (``/api/holiday-master?type=trading``, cash segment "CM"), when
   it has been fetched; it is cached as JSON so later starts work offline.
2. The bundled list below, the fallback. 2025 and 2026 are NSE's published lists (as
   carried by ``exchange_calendars``' XBOM calendar, PR #528 and issue #544, which follow
   nseindia.com's holiday page). **2027 is provisional**: NSE publishes the next year's list
   in December, and at the time of writing only the fixed-date national holidays were
   certain, so the lunar-calendar festivals of 2027 are missing until the fetched list
   brings them. ``is_provisional`` says so and the completeness check reports it.

Special sessions (a Budget day on a weekend, Diwali's Muhurat hour) are trading sessions on
days that are otherwise closed, with their own hours. NSE announces them by circular, not in
the holiday list, so they are bundled here as each is announced.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

IST = ZoneInfo("Asia/Kolkata")
REGULAR_OPEN = time(9, 15)
REGULAR_CLOSE = time(15, 30)
REGULAR_MINUTES = 375  # 09:15 to 15:30: the one-minute bars of a full session


class CalendarError(ValueError):
    """A holiday list that cannot be read (wrong shape, unparseable date)."""


@dataclass(frozen=True, slots=True)
class Session:
    """One trading session of NSE's cash market, in IST."""

    day: date
    open: time = REGULAR_OPEN
    close: time = REGULAR_CLOSE
    name: str = ""  # empty for a regular day; the occasion for a special session

    @property
    def special(self) -> bool:
        return bool(self.name)

    @property
    def opens_at(self) -> datetime:
        return datetime.combine(self.day, self.open, tzinfo=IST)

    @property
    def closes_at(self) -> datetime:
        return datetime.combine(self.day, self.close, tzinfo=IST)

    @property
    def minutes(self) -> int:
        """How many one-minute bars a complete session has (375 on a regular day)."""
        return int((self.closes_at - self.opens_at).total_seconds() // 60)


# -- the bundled fallback -------------------------------------------------------------------

_HOLIDAYS_2025 = {
    "2025-02-26": "Mahashivratri",
    "2025-03-14": "Holi",
    "2025-03-31": "Id-Ul-Fitr (Ramadan Eid)",
    "2025-04-10": "Shri Mahavir Jayanti",
    "2025-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2025-04-18": "Good Friday",
    "2025-05-01": "Maharashtra Day",
    "2025-08-15": "Independence Day",
    "2025-08-27": "Ganesh Chaturthi",
    "2025-10-02": "Mahatma Gandhi Jayanti / Dussehra",
    "2025-10-21": "Diwali Laxmi Pujan",
    "2025-10-22": "Diwali Balipratipada",
    "2025-11-05": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2025-12-25": "Christmas",
}

_HOLIDAYS_2026 = {
    "2026-01-15": "Municipal Corporation elections in Maharashtra",
    "2026-01-26": "Republic Day",
    "2026-03-03": "Holi",
    "2026-03-26": "Shri Ram Navami",
    "2026-03-31": "Shri Mahavir Jayanti",
    "2026-04-03": "Good Friday",
    "2026-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
    "2026-05-01": "Maharashtra Day",
    "2026-05-28": "Bakri Id",
    "2026-06-26": "Muharram",
    "2026-09-14": "Ganesh Chaturthi",
    "2026-10-02": "Mahatma Gandhi Jayanti",
    "2026-10-20": "Dussehra",
    "2026-11-10": "Diwali Balipratipada",
    "2026-11-24": "Prakash Gurpurb Sri Guru Nanak Dev",
    "2026-12-25": "Christmas",
}

# Provisional: only the fixed-date national holidays that fall on weekdays.
_HOLIDAYS_2027 = {
    "2027-01-26": "Republic Day",
    "2027-04-14": "Dr. Baba Saheb Ambedkar Jayanti",
}

_SPECIAL_SESSIONS = (
    # Union Budget on a Saturday: a full session (NSE circular, January 2025).
    Session(date(2025, 2, 1), name="Union Budget"),
    # Diwali Muhurat trading, Samvat 2082: 13:45-14:45 on the Laxmi Pujan holiday.
    Session(date(2025, 10, 21), time(13, 45), time(14, 45), "Muhurat trading"),
    # Union Budget on a Sunday: live trading at normal hours (NSE circular, 16 January 2026).
    Session(date(2026, 2, 1), name="Union Budget"),
)

BUNDLED_YEARS = frozenset({2025, 2026, 2027})
PROVISIONAL_YEARS = frozenset({2027})


def _bundled_holidays() -> dict[date, str]:
    out: dict[date, str] = {}
    for table in (_HOLIDAYS_2025, _HOLIDAYS_2026, _HOLIDAYS_2027):
        out.update((date.fromisoformat(k), v) for k, v in table.items())
    return out


# -- NSE's holiday list ---------------------------------------------------------------------


def parse_nse_date(text: str) -> date:
    """``26-Jan-2026`` (NSE's format) to a date."""
    try:
        return datetime.strptime(text.strip(), "%d-%b-%Y").replace(tzinfo=IST).date()
    except (AttributeError, ValueError):
        raise CalendarError(f"unparseable NSE holiday date {text!r}") from None


def parse_nse_holidays(payload: object, segment: str = "CM") -> dict[date, str]:
    """The holidays of ``segment`` (cash market by default) from ``holiday-master`` JSON.

    Other segments (FO, CD, CBM...) have their own lists and are ignored: CBM comes first in
    NSE's answer and is not the equity calendar.
    """
    if not isinstance(payload, dict):
        raise CalendarError("NSE holiday list: expected a JSON object keyed by segment")
    rows = payload.get(segment)
    if not isinstance(rows, list) or not rows:
        raise CalendarError(f"NSE holiday list has no {segment!r} segment")
    out: dict[date, str] = {}
    for row in rows:
        if not isinstance(row, dict) or "tradingDate" not in row:
            raise CalendarError("NSE holiday list: a row without tradingDate")
        out[parse_nse_date(str(row["tradingDate"]))] = str(row.get("description") or "holiday")
    return out


# -- the calendar ---------------------------------------------------------------------------


@dataclass
class ExchangeCalendar:
    holidays: dict[date, str] = field(default_factory=_bundled_holidays)
    specials: dict[date, Session] = field(
        default_factory=lambda: {s.day: s for s in _SPECIAL_SESSIONS}
    )
    # Years whose list NSE has published (bundled or fetched); others are guesses.
    confirmed_years: set[int] = field(
        default_factory=lambda: set(BUNDLED_YEARS - PROVISIONAL_YEARS)
    )
    source: str = "bundled"

    def merge_nse(self, holidays: Mapping[date, str], source: str = "nse") -> None:
        """Take NSE's list for the years it covers (it replaces ours for those years)."""
        years = {d.year for d in holidays}
        self.holidays = {d: n for d, n in self.holidays.items() if d.year not in years}
        self.holidays.update(holidays)
        self.confirmed_years |= years
        self.source = source

    def is_provisional(self, day: date) -> bool:
        return day.year not in self.confirmed_years

    def session(self, day: date) -> Session | None:
        """The session of ``day``, or None when the market is closed all day."""
        special = self.specials.get(day)
        if special is not None:
            return special
        if day.weekday() >= 5 or day in self.holidays:
            return None
        return Session(day)

    def is_trading_day(self, day: date) -> bool:
        return self.session(day) is not None

    def holiday_name(self, day: date) -> str | None:
        if day in self.specials:
            return None
        if day in self.holidays:
            return self.holidays[day]
        return "weekend" if day.weekday() >= 5 else None

    def sessions(self, first: date, last: date) -> Iterator[Session]:
        """Every session from ``first`` to ``last`` inclusive, oldest first."""
        day = first
        while day <= last:
            s = self.session(day)
            if s is not None:
                yield s
            day += timedelta(days=1)

    def previous_trading_day(self, day: date) -> date:
        day -= timedelta(days=1)
        while not self.is_trading_day(day):
            day -= timedelta(days=1)
        return day

    def next_trading_day(self, day: date) -> date:
        day += timedelta(days=1)
        while not self.is_trading_day(day):
            day += timedelta(days=1)
        return day

    def next_open(self, after: datetime) -> datetime:
        """The first session opening strictly after ``after``: where an after-market order
        placed at ``after`` meets the market."""
        day = after.astimezone(IST).date()
        today = self.session(day)
        if today is not None and after < today.opens_at:
            return today.opens_at
        following = self.session(self.next_trading_day(day))
        assert following is not None  # next_trading_day returns a trading day
        return following.opens_at


# -- the process-wide calendar and its cache ------------------------------------------------

CACHE_NAME = "nse-holidays.json"
_lock = threading.Lock()
_default: ExchangeCalendar | None = None


def default_calendar() -> ExchangeCalendar:
    """The calendar every service uses: bundled, plus NSE's list once one was installed."""
    global _default
    if _default is None:
        with _lock:
            if _default is None:
                _default = ExchangeCalendar()
    return _default


def install(calendar: ExchangeCalendar) -> None:
    """Make ``calendar`` the process-wide one (after a fetch, or in a test)."""
    global _default
    with _lock:
        _default = calendar


def save_cache(path: Path, payload: Any) -> None:
    """Keep NSE's raw answer (it is public data) so an offline start still knows it."""
    parse_nse_holidays(payload)  # never cache what cannot be read back
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(payload), "utf-8")
    tmp.replace(path)


def load_cache(path: Path, calendar: ExchangeCalendar | None = None) -> ExchangeCalendar:
    """The bundled calendar with a cached NSE list merged in (if there is a readable one)."""
    calendar = calendar or ExchangeCalendar()
    if not path.exists():
        return calendar
    try:
        calendar.merge_nse(parse_nse_holidays(json.loads(path.read_text("utf-8"))), "nse-cache")
    except (OSError, json.JSONDecodeError, CalendarError) as exc:
        log.warning("ignoring the cached NSE holiday list %s: %s", path, exc)
    return calendar
