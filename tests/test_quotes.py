"""The quote book: the newest tick per instrument."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from decimal import Decimal

import pytest

from services.bus import TICKS, EventBus
from services.clock import IST
from services.domain import Tick
from services.quotes import QuoteBook

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=IST)


def tick(key: str, price: str, ts: datetime = T0) -> Tick:
    p = Decimal(price)
    return Tick(key, ts, p, 1, 1, p, p, p, p)


def test_keeps_the_newest_tick_per_key() -> None:
    book = QuoteBook(EventBus())
    assert book.last_price("NSE:SBIN") is None and book.last_tick("NSE:SBIN") is None
    book.update(tick("NSE:SBIN", "800.05"))
    book.update(tick("NSE:SBIN", "801.10", T0 + timedelta(seconds=1)))
    book.update(tick("NSE:SBIN", "799.00", T0))  # arrives late: older than what we hold
    book.update(tick("NSE:TCS", "3500.00"))
    assert book.last_price("NSE:SBIN") == Decimal("801.10")
    assert book.last_price("NSE:TCS") == Decimal("3500.00")
    assert sorted(book.keys()) == ["NSE:SBIN", "NSE:TCS"]


async def test_run_follows_the_tick_topic() -> None:
    bus = EventBus()
    book = QuoteBook(bus)
    task = asyncio.create_task(book.run())
    await asyncio.sleep(0)
    bus.publish_many(TICKS, [tick("NSE:SBIN", "800"), tick("NSE:INFY", "1500")])
    await asyncio.sleep(0)
    bus.publish(TICKS, tick("NSE:SBIN", "802", T0 + timedelta(seconds=1)))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert book.last_price("NSE:SBIN") == Decimal("802")
    assert book.last_price("NSE:INFY") == Decimal("1500")
    assert bus.subscriber_count(TICKS) == 0
