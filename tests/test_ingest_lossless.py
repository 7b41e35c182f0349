"""A burst of ticks through the real services: lossless subscribers miss none, no task dies.

Issue 19: at 50,000 ticks/s the bar builder, paper broker and recorder received 3-6% of the
ticks and the alert book died on SubscriberLagged. The rate itself is measured by
bench/bench_ingest.py; this checks the behaviour: 20,000 ticks published in two bursts far
faster than the consumers run, every lossless subscriber gets every one, nothing lags.
"""

from __future__ import annotations

import asyncio
import os
from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest

from services.alerts import AlertBook, AlertCondition
from services.bars import BarBuilder
from services.bus import TICKS, EventBus
from services.clock import IST, ManualClock
from services.domain import Tick
from services.gtt import GttBook
from services.instruments import InstrumentRegistry, bundled_universe
from services.paper.broker import PaperBroker
from services.recorder import Recorder
from services.simulator.market import MarketSimulator
from services.storage import Database

DAY = date(2026, 12, 2)


async def test_bursts_reach_every_lossless_subscriber(tmp_path) -> None:
    instruments, refs = bundled_universe(DAY)
    start = datetime(2026, 12, 2, 10, 0, tzinfo=IST)
    sim = MarketSimulator(instruments, refs, EventBus(), ManualClock(start), seed=2)
    ticks = []
    now = start
    while len(ticks) < 20_000:
        ticks += sim.step(now, 1_000)
        now += timedelta(milliseconds=20)
    bus = EventBus()
    bus.bind_loop(asyncio.get_running_loop())
    clock = ManualClock(start)
    db = Database.open(tmp_path / "ingest.db", os.urandom(32), create=True)
    alerts = AlertBook(bus, clock)
    await alerts.add("NSE:INFY", AlertCondition.PRICE_ABOVE, Decimal(10**9))
    recorder = Recorder(db, bus)
    services = [
        BarBuilder(bus).run(),
        PaperBroker(InstrumentRegistry(instruments), bus, clock).run(),
        alerts.run(),
        recorder.run(),
    ]
    tasks = [asyncio.create_task(s) for s in services]
    await asyncio.sleep(0.05)
    subs = {s.name: s for s in bus._subs[TICKS]}
    bus.publish_many(TICKS, ticks[:10_000])  # a burst the consumers cannot keep up with
    await asyncio.sleep(0)
    bus.publish_many(TICKS, ticks[10_000:])
    for _ in range(600):
        if not any(s.pending() for s in subs.values()):
            break
        await asyncio.sleep(0.05)
    try:
        for name in ("bar-builder", "paper-broker", "alerts", "recorder"):
            assert subs[name].delivered == len(ticks), name
        # No resync anywhere, the recorder's closed-bar mailbox included (the live-bar
        # updates of a burst used to fill it).
        assert bus.lagged == {}
        assert not any(t.done() for t in tasks)  # every service still running
    finally:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await alerts.close()
        await recorder.close()
    # Delivered is not yet stored: every tick is a row in the encrypted database.
    stored = await asyncio.to_thread(db.query, "SELECT count(*) FROM ticks")
    assert stored == [(len(ticks),)] and recorder.errors == 0
    await asyncio.to_thread(db.close)


async def _until(predicate, what: str, seconds: float = 20.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not predicate():
        assert loop.time() < deadline, f"waited {seconds}s for {what}"
        await asyncio.sleep(0.01)


def _lossless_services(bus: EventBus, clock: ManualClock, db: Database):
    instruments, _ = bundled_universe(DAY)

    async def submit(request):  # never called: no GTT is placed
        raise AssertionError(request)

    return {
        "bar-builder": lambda: BarBuilder(bus).run(),
        "paper-broker": lambda: PaperBroker(InstrumentRegistry(instruments), bus, clock).run(),
        "alerts": lambda: AlertBook(bus, clock).run(),
        "gtt-book": lambda: GttBook(bus, clock, submit, lambda _key: None).run(),
        "recorder": lambda: Recorder(db, bus).run(),
    }


@pytest.mark.parametrize("name", ["bar-builder", "paper-broker", "alerts", "gtt-book", "recorder"])
async def test_no_tick_service_dies_on_a_lag_it_resyncs_and_counts_it(tmp_path, name) -> None:
    """Every lossless tick subscriber, overrun by one tick more than its mailbox holds,
    keeps running, is counted once in ``bus.lagged`` (dalal_bus_subscriber_lagged_total) and
    takes the next ticks as before."""
    bus = EventBus()
    clock = ManualClock(datetime(2026, 12, 2, 10, 0, tzinfo=IST))
    db = Database.open(tmp_path / "lag.db", os.urandom(32), create=True)
    task = asyncio.create_task(_lossless_services(bus, clock, db)[name]())
    try:
        await _until(lambda: bus.subscriber_count(TICKS) == 1, "the subscription")
        (sub,) = bus._subs[TICKS]
        p = Decimal(1000)
        tick = Tick("NSE:INFY", clock.now(), p, 1, 1, p, p, p, p)
        bus.publish_many(TICKS, [tick] * (TICKS.maxsize + 1))
        await _until(lambda: bus.lagged.get(sub.name) == 1 and not sub.lagging, "the resync")
        assert not task.done(), f"{name} died on SubscriberLagged"
        before = sub.delivered
        bus.publish_many(TICKS, [tick] * 3)
        await _until(lambda: sub.delivered == before + 3, "the ticks after the resync")
        assert not task.done() and bus.lagged == {sub.name: 1}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await asyncio.to_thread(db.close)


async def test_alert_book_survives_a_lag_and_counts_it() -> None:
    bus = EventBus()
    clock = ManualClock(datetime(2026, 12, 2, 10, 0, tzinfo=IST))
    alerts = AlertBook(bus, clock)
    task = asyncio.create_task(alerts.run())
    await asyncio.sleep(0)
    p = Decimal(1000)
    tick = Tick("NSE:INFY", clock.now(), p, 1, 1, p, p, p, p)
    bus.publish_many(TICKS, [tick] * (TICKS.maxsize + 1))  # one more than the mailbox holds
    await asyncio.sleep(0.05)
    assert not task.done(), "the alert book died on SubscriberLagged"
    assert alerts.resyncs == 1 and bus.lagged == {"alerts": 1}
    bus.publish(TICKS, tick)  # and it keeps evaluating afterwards
    await asyncio.sleep(0.01)
    assert not task.done()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
