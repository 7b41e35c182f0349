"""The exchange calendar: NSE holidays, special sessions, the cached NSE list, expiry rolls."""

from __future__ import annotations

import json
from datetime import date, datetime, time
from pathlib import Path

import pytest

from services import calendar as cal
from services.bars import last_closed_session_bucket
from services.calendar import CalendarError, ExchangeCalendar, parse_nse_holidays
from services.clock import IST, is_market_open, is_trading_day
from services.domain import Timeframe
from services.instruments import monthly_expiry


def test_nse_2026_holidays_and_weekends_do_not_trade() -> None:
    for day in ("2026-01-15", "2026-01-26", "2026-03-03", "2026-03-26", "2026-03-31",
                "2026-04-03", "2026-04-14", "2026-05-01", "2026-05-28", "2026-06-26",
                "2026-09-14", "2026-10-02", "2026-10-20", "2026-11-10", "2026-11-24",
                "2026-12-25"):
        assert not is_trading_day(date.fromisoformat(day)), day
    assert is_trading_day(date(2026, 3, 2))  # an ordinary Monday
    assert not is_trading_day(date(2026, 3, 7))  # Saturday


def test_special_sessions_trade_with_their_own_hours() -> None:
    budget = cal.default_calendar().session(date(2026, 2, 1))  # a Sunday
    assert budget is not None and budget.special and budget.minutes == 375
    muhurat = cal.default_calendar().session(date(2025, 10, 21))  # a holiday, one hour
    assert muhurat is not None and muhurat.minutes == 60
    assert is_market_open(datetime(2025, 10, 21, 14, 0, tzinfo=IST))
    assert not is_market_open(datetime(2025, 10, 21, 10, 0, tzinfo=IST))
    assert is_market_open(datetime(2026, 2, 1, 9, 15, tzinfo=IST))


def test_2027_is_provisional_until_nse_publishes_it() -> None:
    calendar = ExchangeCalendar()
    assert calendar.is_provisional(date(2027, 3, 1))
    assert not calendar.is_provisional(date(2026, 3, 1))
    calendar.merge_nse({date(2027, 3, 22): "Holi"})
    assert not calendar.is_provisional(date(2027, 3, 1))
    assert not calendar.is_trading_day(date(2027, 3, 22))
    # NSE's list for a year replaces the bundled guesses for that year only.
    assert calendar.is_trading_day(date(2027, 1, 26))
    assert not calendar.is_trading_day(date(2026, 1, 26))


PAYLOAD = {
    "CBM": [{"tradingDate": "02-Jan-2026", "description": "bonds only"}],
    "CM": [
        {"tradingDate": "26-Jan-2027", "weekDay": "Tuesday", "description": "Republic Day",
         "Sr_no": 1},
        {"tradingDate": "10-Mar-2027", "weekDay": "Wednesday", "description": "Holi"},
    ],
}


def test_nse_list_is_read_from_the_cash_segment_and_cached(tmp_path: Path) -> None:
    holidays = parse_nse_holidays(PAYLOAD)
    assert holidays == {date(2027, 1, 26): "Republic Day", date(2027, 3, 10): "Holi"}
    path = tmp_path / cal.CACHE_NAME
    cal.save_cache(path, PAYLOAD)
    loaded = cal.load_cache(path)
    assert loaded.source == "nse-cache"
    assert not loaded.is_trading_day(date(2027, 3, 10))
    assert loaded.is_trading_day(date(2027, 3, 11))


@pytest.mark.parametrize("payload, message", [
    ([1, 2], "JSON object"),
    ({"FO": [{"tradingDate": "26-Jan-2026"}]}, "no 'CM' segment"),
    ({"CM": [{"tradingDate": "2026-01-26"}]}, "unparseable"),
    ({"CM": [{"description": "x"}]}, "without tradingDate"),
])
def test_a_bad_nse_list_is_refused_and_never_cached(
    tmp_path: Path, payload: object, message: str
) -> None:
    with pytest.raises(CalendarError, match=message):
        cal.save_cache(tmp_path / "h.json", payload)
    assert not (tmp_path / "h.json").exists()


def test_an_unreadable_cache_falls_back_to_the_bundled_list(tmp_path: Path) -> None:
    path = tmp_path / cal.CACHE_NAME
    path.write_text(json.dumps({"CM": "garbage"}))
    loaded = cal.load_cache(path)
    assert loaded.source == "bundled"
    assert not loaded.is_trading_day(date(2026, 1, 26))


def test_the_bar_builder_skips_holidays_when_stepping_back() -> None:
    # The session before Wednesday 4 March 2026 is Monday 2 March: Tuesday was Holi.
    bucket = last_closed_session_bucket(datetime(2026, 3, 4, 9, 0, tzinfo=IST), Timeframe.M5)
    assert bucket == datetime(2026, 3, 2, 15, 25, tzinfo=IST)


def test_a_monthly_expiry_on_a_holiday_rolls_to_the_trading_day_before() -> None:
    # Last Tuesday of March 2026 is 31 March, Shri Mahavir Jayanti.
    assert monthly_expiry(date(2026, 3, 2)) == date(2026, 3, 30)
    assert monthly_expiry(date(2026, 4, 1)) == date(2026, 4, 28)


def test_sessions_lists_trading_days_only() -> None:
    days = [s.day for s in cal.default_calendar().sessions(date(2026, 3, 1), date(2026, 3, 8))]
    assert days == [date(2026, 3, 2), date(2026, 3, 4), date(2026, 3, 5), date(2026, 3, 6)]
    assert all(s.open == time(9, 15) for s in cal.default_calendar().sessions(
        date(2026, 3, 1), date(2026, 3, 8)))
