"""The generic order throttle: any set of windows, and a day count that survives a restart."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import pytest

from services.brokers.errors import ThrottleLimited
from services.brokers.ports import RateWindow
from services.brokers.throttle import MemoryCountStore, OrderThrottle
from services.clock import IST, ManualClock
from services.storage import Database
from services.storage.repositories import OrderCountRepository

START = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


def advancing(clock: ManualClock, waits: list[float]):  # type: ignore[no-untyped-def]
    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        clock.advance(seconds)

    return sleep


async def test_a_thirty_minute_window_binds_after_the_minute_window() -> None:
    # Upstox's order limits: 10/s, 500/min, 2000/30 min.
    clock = ManualClock(START)
    waits: list[float] = []
    windows = (RateWindow(10, 1.0), RateWindow(500, 60.0), RateWindow(2000, 1800.0))
    t = OrderThrottle(clock, windows=windows, max_wait=120.0, sleep=advancing(clock, waits))
    for _ in range(2000):
        await t.acquire()
    # 2,000 orders at 500 a minute take four minutes (the last batch starts at t0+180 s).
    assert (clock.now() - START).total_seconds() == pytest.approx(180 + 1.0 * 49, abs=1.0)
    with pytest.raises(ThrottleLimited, match="2,000 orders 30 minutes"):
        await t.acquire()


async def test_an_hour_window() -> None:
    clock = ManualClock(START)
    t = OrderThrottle(clock, windows=(RateWindow(3, 3600.0),), max_wait=1.0)
    for _ in range(3):
        t.reserve()
    with pytest.raises(ThrottleLimited, match="3 orders an hour"):
        t.reserve()
    clock.advance(3600)
    assert t.reserve() == 0.0


def test_day_count_survives_a_restart_through_the_profile_database(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with Database.open(tmp_path / "p.db", b"k" * 32, create=True) as db:
        store = OrderCountRepository(db)
        first = OrderThrottle(clock, per_day=5, broker="Kite", store=store)
        for _ in range(3):
            first.reserve()
            clock.advance(1)
    with Database.open(tmp_path / "p.db", b"k" * 32) as db:
        second = OrderThrottle(clock, per_day=5, broker="Kite", store=OrderCountRepository(db))
        assert second.sent_today == 3
        second.reserve()
        second.reserve()
        with pytest.raises(ThrottleLimited, match="5 orders already sent today"):
            second.reserve()
        # Another broker has its own count; the next IST day starts at zero.
        assert OrderThrottle(clock, broker="Upstox", store=OrderCountRepository(db)).sent_today == 0
        clock.set(datetime(2026, 11, 26, 9, 15, tzinfo=IST))
        assert OrderThrottle(clock, broker="Kite", store=OrderCountRepository(db)).sent_today == 0


async def test_on_the_loop_the_count_is_written_off_the_loop(tmp_path: Path) -> None:
    clock = ManualClock(START)
    with (
        Database.open(tmp_path / "p.db", b"k" * 32, create=True) as db,
        ThreadPoolExecutor(1) as executor,
    ):
        store = OrderCountRepository(db)
        t = OrderThrottle(clock, broker="Kite", store=store, executor=executor)
        for _ in range(4):
            await t.acquire()
        await asyncio.get_running_loop().run_in_executor(executor, lambda: None)  # drain
        assert store.load("Kite", START.date()) == 4
        store.save("Kite", START.date(), 2)  # a late, out-of-order write never lowers it
        assert store.load("Kite", START.date()) == 4


def test_memory_store_is_a_store() -> None:
    store = MemoryCountStore()
    clock = ManualClock(START)
    OrderThrottle(clock, broker="b", store=store).reserve()
    assert store.load("b", START.date()) == 1
