"""The simulated market's past, made once per profile and kept in its history store.

Without a data provider the simulator is the only source of history. Generating it afresh on
every start gave a different "yesterday" each time, and ``dalal model train`` on a fresh
profile found no bars at all. Here the sessions before today are generated deterministically
(``MarketSimulator.previous_sessions``: the seed and the day, never the live price) and
written to the profile's ``HistoryStore`` under the provider ``simulator``. Later calls read
them back; only buckets the store does not hold yet are generated and added, so a real
provider's candles are never overwritten and a kept history never changes.

Blocking (SQLite): call it from a worker thread, never from the event loop.
"""

from __future__ import annotations

from datetime import datetime, time

from services.calendar import IST
from services.domain import Bar, Timeframe
from services.marketdata.store import HistoryStore
from services.simulator.market import MarketSimulator

SIMULATOR_PROVIDER = "simulator"


def today_open(now: datetime) -> datetime:
    """The start of today's session day in IST: history is kept up to here."""
    return datetime.combine(now.astimezone(IST).date(), time(0, 0), tzinfo=IST)


def persisted_history(
    store: HistoryStore,
    simulator: MarketSimulator,
    key: str,
    timeframe: Timeframe,
    count: int,
    now: datetime,
) -> list[Bar]:
    """The ``count`` newest bars before today for ``key``: kept ones, plus what is missing."""
    end = today_open(now)
    kept = store.last(key, timeframe, count, end)
    if len(kept) >= count:
        return kept
    have = {b.start for b in kept}
    made = [b for b in simulator.previous_sessions(key, timeframe, count, end)
            if b.start not in have]  # fmt: skip
    if made:
        store.write(made, SIMULATOR_PROVIDER, now)
    return store.last(key, timeframe, count, end)


__all__ = ["SIMULATOR_PROVIDER", "persisted_history", "today_open"]
