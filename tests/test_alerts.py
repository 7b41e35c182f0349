"""Price alerts fire once on a real crossing and survive a restart on the encrypted database."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from services.alerts import ALERTS, AlertBook, AlertCondition, AlertFired
from services.bus import TICKS, EventBus, Subscription
from services.clock import IST, ManualClock
from services.domain import Tick
from services.storage import Database

KEY = "NSE:RELIANCE"
T0 = datetime(2024, 6, 3, 10, 0, tzinfo=IST)
D = Decimal


def tick(price: str, seconds: int = 0, key: str = KEY, close: str = "2400") -> Tick:
    p = D(price)
    return Tick(key, T0 + timedelta(seconds=seconds), p, 1, 1000, p, p, p, D(close))


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database.open(tmp_path / "terminal.db", os.urandom(32), create=True)
    yield database
    database.close()


def fired(sub: Subscription[AlertFired]) -> list[tuple[int, Decimal | None]]:
    return [(e.alert.alert_id, e.alert.triggered_price) for e in sub.drain()]


async def test_crossing_above_fires_once_with_time_and_price() -> None:
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    book.on_tick(tick("2490"))
    alert = await book.add(KEY, AlertCondition.PRICE_ABOVE, D("2500"))

    book.on_tick(tick("2499.95", 1))
    book.on_tick(tick("2500.05", 2, key="NSE:INFY"))  # another instrument never fires it
    assert fired(out) == []
    book.on_tick(tick("2501", 3))
    book.on_tick(tick("2490", 4))
    book.on_tick(tick("2510", 5))  # a second crossing: it has already fired

    assert fired(out) == [(alert.alert_id, D("2501"))]
    done = book.get(alert.alert_id)
    assert done is not None and not done.active
    assert done.triggered_at == T0 + timedelta(seconds=3)
    assert book.active() == [] and book.triggered() == [done]


async def test_crossing_below_fires_once() -> None:
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    alert = await book.add(KEY, "last_price_below", D("2400"))
    book.on_tick(tick("2410"))  # the first price seen sets the side
    book.on_tick(tick("2400.05", 1))
    assert fired(out) == []
    book.on_tick(tick("2400", 2))  # touching the level is reaching it
    book.on_tick(tick("2390", 3))
    assert fired(out) == [(alert.alert_id, D("2400"))]


async def test_change_percent_alert_uses_the_previous_close() -> None:
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    book.on_tick(tick("2400"))  # 0 %
    alert = await book.add(KEY, AlertCondition.CHANGE_BELOW, D("-2"))
    book.on_tick(tick("2360", 1))  # -1.67 %
    assert fired(out) == []
    book.on_tick(tick("2350", 2))  # -2.08 %
    assert fired(out) == [(alert.alert_id, D("2350"))]


async def test_an_alert_created_beyond_its_level_waits_for_a_real_crossing() -> None:
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    book.on_tick(tick("2520"))
    above = await book.add(KEY, AlertCondition.PRICE_ABOVE, D("2500"))
    book.on_tick(tick("2530", 1))
    book.on_tick(tick("2505", 2))
    assert fired(out) == [] and book.active() == [above]

    book.on_tick(tick("2495", 3))  # back below: now armed
    book.on_tick(tick("2500", 4))
    assert fired(out) == [(above.alert_id, D("2500"))]


async def test_the_running_book_reads_every_tick_from_the_bus() -> None:
    """A spike across the level and back inside one batch still fires (lossless)."""
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    task = asyncio.create_task(book.run())
    await asyncio.sleep(0)
    bus.publish(TICKS, tick("2490"))
    await asyncio.sleep(0.01)
    alert = await book.add(KEY, AlertCondition.PRICE_ABOVE, D("2500"))
    bus.publish_many(TICKS, [tick("2502", 1), tick("2495", 2)])
    for _ in range(100):
        if book.fired:
            break
        await asyncio.sleep(0.01)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert fired(out) == [(alert.alert_id, D("2502"))]


async def test_removed_alert_never_fires() -> None:
    bus = EventBus()
    book = AlertBook(bus, ManualClock(T0))
    out = bus.subscribe(ALERTS, "test")
    book.on_tick(tick("2490"))
    keep = await book.add(KEY, AlertCondition.PRICE_ABOVE, D("2500"))
    gone = await book.add(KEY, AlertCondition.PRICE_ABOVE, D("2495"))
    assert await book.remove(gone.alert_id) is True
    assert await book.remove(gone.alert_id) is False
    book.on_tick(tick("2510", 1))
    assert fired(out) == [(keep.alert_id, D("2510"))]
    assert [a.alert_id for a in book.triggered()] == [keep.alert_id]


async def test_level_must_be_a_finite_decimal() -> None:
    book = AlertBook(EventBus(), ManualClock(T0))
    with pytest.raises(ValueError):
        await book.add(KEY, AlertCondition.PRICE_ABOVE, 2500)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        await book.add(KEY, AlertCondition.PRICE_ABOVE, D("NaN"))
    with pytest.raises(ValueError):
        await book.add(KEY, "price_sideways", D("1"))


async def test_alerts_persist_across_books_on_the_encrypted_database(db: Database) -> None:
    clock = ManualClock(T0)
    first = AlertBook(EventBus(), clock, db)
    first.on_tick(tick("2490"))
    fires = await first.add(KEY, AlertCondition.PRICE_ABOVE, D("2500.50"), note="breakout")
    waits = await first.add(KEY, AlertCondition.PRICE_BELOW, D("2300"))
    removed = await first.add("NSE:INFY", AlertCondition.PRICE_BELOW, D("1400"))
    await first.remove(removed.alert_id)
    first.on_tick(tick("2501", 5))
    await first.close()  # queued writes land

    bus = EventBus()
    second = AlertBook(bus, clock, db)
    await second.load()
    assert [(a.alert_id, a.key, a.condition, a.level) for a in second.active()] == [
        (waits.alert_id, KEY, AlertCondition.PRICE_BELOW, D("2300"))
    ]
    [old] = second.triggered()
    assert (old.alert_id, old.level, old.note) == (fires.alert_id, D("2500.50"), "breakout")
    assert old.triggered_at == T0 + timedelta(seconds=5)
    assert old.triggered_price == D("2501")  # kept in the database since schema v7

    # The reloaded alert is live: the first tick sets its side, a crossing fires it.
    out = bus.subscribe(ALERTS, "test")
    second.on_tick(tick("2350", 6))
    second.on_tick(tick("2299", 7))
    assert fired(out) == [(waits.alert_id, D("2299"))]
    await second.close()
    assert [r.active for r in db.alerts.all()] == [False, False]
