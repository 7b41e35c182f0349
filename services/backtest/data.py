"""Where a backtest's bars come from: the profile's stored history, or the simulator's.

Stored bars are preferred and a missing range is an error that names the command to fetch
it: a backtest that silently fell back to synthetic prices would report a strategy's result
on a market that never existed. The simulator's history is chosen explicitly, and is the
same path for the same profile seed, so a run can be repeated.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta

from services.bus import EventBus
from services.calendar import ExchangeCalendar, default_calendar
from services.clock import IST, ManualClock
from services.domain import Bar, Timeframe
from services.instruments import bundled_universe
from services.simulator.market import MarketSimulator


class NoBars(LookupError):
    """No bars for the request; ``str(e)`` says what to do about it."""


def span(first: date, last: date) -> tuple[datetime, datetime]:
    """The IST interval from ``first`` 00:00 to the end of ``last``."""
    return (
        datetime.combine(first, time(0), tzinfo=IST),
        datetime.combine(last + timedelta(days=1), time(0), tzinfo=IST),
    )


def simulator_bars(
    keys: Sequence[str],
    timeframe: Timeframe,
    first: date,
    last: date,
    *,
    seed: int = 42,
    calendar: ExchangeCalendar | None = None,
) -> list[Bar]:
    """The simulator's deterministic history for ``keys`` over the trading days given."""
    calendar = calendar or default_calendar()
    sessions = list(calendar.sessions(first, last))
    if not sessions:
        raise NoBars(f"no trading day between {first} and {last}")
    per_day = max(1, (sessions[0].minutes * 60) // timeframe.seconds)
    count = per_day * len(sessions) if timeframe is not Timeframe.D1 else len(sessions)
    end = sessions[-1].closes_at
    instruments, references = bundled_universe(last)
    known = {i.key for i in instruments}
    unknown = [k for k in keys if k not in known]
    if unknown:
        raise NoBars(f"the simulator has no {', '.join(unknown)}")
    sim = MarketSimulator(instruments, references, EventBus(), ManualClock(end), seed=seed)
    bars: list[Bar] = []
    for key in keys:
        bars.extend(b for b in sim.history(key, timeframe, count, end) if b.start.date() >= first)
    if not bars:
        raise NoBars(f"the simulator produced no {timeframe.value} bars for {first}..{last}")
    bars.sort(key=lambda b: (b.start, b.key))
    return bars
