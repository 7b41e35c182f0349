"""Keeps the encrypted database in step with the event bus, off the event loop.

SQLCipher calls block (an order-journal commit is an fsync), so every write runs on one of two
single-thread executors: one for the durable order path (journal and audit log), one for the
bulk market data (tick batches, closed bars). A burst of ticks therefore never delays the
journal write that must precede an order, and the loop never waits on the disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar

from services.bus import (
    BARS,
    FILLS,
    ORDERS,
    TICKS,
    EventBus,
    SubscriberLagged,
    Subscription,
    closed_bars,
)
from services.clock import IST
from services.domain import Bar, Fill, Order, Tick
from services.metrics import RecorderSource
from services.security.audit import AuditLog
from services.storage import Database, OrderJournal, TickWriter

log = logging.getLogger(__name__)

T = TypeVar("T")
R = TypeVar("R")


# Waits before writing a failed order, fill or bar batch again: past SQLite's own busy
# timeout (services.storage.database), a locked file gets some 9 s more before a loss.
RETRY_SECONDS = (0.2, 1.0, 3.0, 5.0)


class Recorder:
    """The order journal, audit log and market-data recorder of one unlocked profile.

    Implements ``services.orders.OrderJournalPort`` for the order manager.

    Ticks are taken from a lossless mailbox (the bus's, bounded: a backlog beyond it is a
    counted resync, never a silent gap), encoded on the market-data thread and committed
    every ``flush_seconds`` or ``tick_batch`` rows, whichever comes first. That is the whole
    crash window of the recordings: a killed process loses at most the ticks of the last
    ``flush_seconds`` (and at most ``tick_batch`` of them) plus any still in the mailbox.
    Orders, fills and the audit log are durable at each call (their own thread).
    """

    # At 50,000 ticks/s a 0.25 s commit holds 12,500 rows, near the 20,000-row cap that 1 s
    # hit, so the shorter window costs little per tick (bench/bench_ingest.py --flush); at
    # low rates the commits are small but few ticks are at stake.
    FLUSH_SECONDS = 0.25
    TICK_BATCH = 20_000

    def __init__(
        self,
        db: Database,
        bus: EventBus,
        *,
        record_ticks: bool = True,
        tick_batch: int = TICK_BATCH,
        flush_seconds: float = FLUSH_SECONDS,
    ) -> None:
        self.db = db
        self._bus = bus
        self._journal = OrderJournal(db)
        self._audit = AuditLog(db)
        self._ticks = TickWriter(db, batch_size=tick_batch) if record_ticks else None
        self._flush_seconds = flush_seconds
        self._durable = ThreadPoolExecutor(1, thread_name_prefix="dalal-journal")
        self._bulk = ThreadPoolExecutor(1, thread_name_prefix="dalal-ticks")
        # Subscribed at construction so nothing published before run() starts is missed.
        self._orders = bus.subscribe(ORDERS, "recorder", lossless=True)
        self._fills = bus.subscribe(FILLS, "recorder", lossless=True)
        # A full mailbox keeps the ticks it holds and refuses only the excess: there is no
        # snapshot to resync a recording from, and clearing 200,000 queued ticks because the
        # next one did not fit turned a short overload into a loss of them all.
        self._tick_sub = (
            bus.subscribe(TICKS, "recorder", lossless=True, keep_backlog=True)
            if record_ticks
            else None
        )
        # Only closed bars are stored: live-bar updates (one per instrument and timeframe per
        # tick batch) would fill the mailbox and make the recorder lag at a high tick rate.
        self._bars = bus.subscribe(BARS, "recorder", lossless=True, accept=closed_bars)
        self.errors = 0
        self.tick_backlog_peak = 0

    async def _on(self, pool: ThreadPoolExecutor, fn: Callable[..., R], *args: Any) -> R:
        return await asyncio.get_running_loop().run_in_executor(pool, fn, *args)

    # -- OrderJournalPort --------------------------------------------------------------------
    async def record_intent(self, order: Order) -> None:
        await self._on(self._durable, self._journal.record_intent, order)

    async def record_ack(self, intent_id: str, order: Order) -> None:
        await self._on(self._durable, self._journal.record_ack, intent_id, order)

    async def audit(self, kind: str, actor: str, details: dict[str, object]) -> None:
        await self._on(self._durable, self._audit.record, kind, actor, details)

    async def durable(self, fn: Callable[[], R]) -> R:
        """Run a blocking call on the journal thread, in order with the journal's writes."""
        return await self._on(self._durable, fn)

    def audit_nowait(self, kind: str, actor: str, details: Mapping[str, Any]) -> None:
        """Queue an audit entry from synchronous code (the risk engine's state changes).

        The journal executor runs one job at a time in submission order, so entries keep
        their order; a failure is logged, never raised into the caller.
        """
        future = self._durable.submit(self._audit.record, kind, actor, dict(details))
        future.add_done_callback(_log_failure)

    async def session(self, day: date) -> tuple[list[Order], list[Fill]]:
        """Return the orders placed and the fills made on ``day`` (IST), for a restart."""

        start = datetime.combine(day, time(0), tzinfo=IST)
        end = start + timedelta(days=1)

        def load() -> tuple[list[Order], list[Fill]]:
            return self.db.orders.placed_between(start, end), self.db.fills.between(start, end)

        return await self._on(self._durable, load)

    async def before(self, day: date) -> tuple[list[Order], list[Fill]]:
        """Every order and fill journaled before ``day`` (IST): the paper account's past."""
        end = datetime.combine(day, time(0), tzinfo=IST)
        start = datetime(2000, 1, 1, tzinfo=IST)

        def load() -> tuple[list[Order], list[Fill]]:
            return self.db.orders.placed_between(start, end), self.db.fills.between(start, end)

        return await self._on(self._durable, load)

    async def record_update(self, order: Order) -> None:
        await self._on(self._durable, self._journal.record_update, order)

    # -- following the bus -------------------------------------------------------------------
    async def run(self) -> None:
        """Record order updates, fills, ticks and closed bars until cancelled."""
        async with asyncio.TaskGroup() as group:
            # Orders, fills and bars are upserts and idempotent inserts: a failed batch (the
            # file locked past the busy timeout) is written again rather than dropped. A tick
            # batch is not retried (it may be half in the writer's buffer).
            group.create_task(
                self._follow(self._orders, self._write_orders, self._durable, RETRY_SECONDS)
            )
            group.create_task(
                self._follow(self._fills, self._write_fills, self._durable, RETRY_SECONDS)
            )
            group.create_task(
                self._follow(self._bars, self._write_bars, self._bulk, RETRY_SECONDS)
            )
            if self._tick_sub is not None:
                group.create_task(self._follow(self._tick_sub, self._write_ticks, self._bulk))
                group.create_task(self._flush_loop())

    async def _follow(
        self,
        sub: Subscription[T],
        write: Callable[[list[T]], None],
        pool: ThreadPoolExecutor,
        retries: tuple[float, ...] = (),
    ) -> None:
        while True:
            try:
                batch = await sub.next_batch()
            except SubscriberLagged:
                log.error("recorder fell behind on %s; %d events were not recorded so far",
                          sub.topic, sub.dropped)  # fmt: skip
                self.errors += 1
                continue
            for wait in (*retries, None):
                try:
                    # Shielded: a shutdown that cancels this task must not cancel a batch
                    # already taken from the mailbox before it reached the disk (close()
                    # flushes after it).
                    await asyncio.shield(self._on(pool, write, batch))
                    break
                except Exception:
                    if wait is not None:
                        log.warning("recording %s events failed; again in %g s",
                                    sub.topic.name, wait)  # fmt: skip
                        await asyncio.sleep(wait)
                        continue
                    # A full disk must not take the terminal down; it is counted and logged.
                    self.errors += 1
                    log.exception("recording %d %s events failed", len(batch), sub.topic.name)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_seconds)
            await self._on(self._bulk, self._flush_ticks)

    def _write_orders(self, orders: list[Order]) -> None:
        self._journal.record_updates(orders)

    def _write_fills(self, fills: list[Fill]) -> None:
        for fill in fills:
            self._journal.record_fill(fill)

    def tick_backlog(self) -> int:
        """Ticks received and not yet committed: waiting in the mailbox or encoded."""
        waiting = self._tick_sub.pending() if self._tick_sub is not None else 0
        return waiting + (self._ticks.pending if self._ticks is not None else 0)

    @property
    def ticks_written(self) -> int:
        return self._ticks.written if self._ticks is not None else 0

    async def sync(self) -> None:
        """Commit the ticks encoded so far (what the mailbox still holds is not waited for)."""
        await self._on(self._bulk, self._flush_ticks)

    def metrics_source(self) -> RecorderSource:
        return RecorderSource(
            self.tick_backlog, lambda: self.tick_backlog_peak, lambda: self.ticks_written,
            lambda: self.errors,
        )  # fmt: skip

    def _write_ticks(self, ticks: list[Tick]) -> None:
        assert self._ticks is not None
        # Backpressure accounting: what waits for the disk as this batch is taken.
        backlog = len(ticks) + self.tick_backlog()
        if backlog > self.tick_backlog_peak:
            self.tick_backlog_peak = backlog
        self._ticks.add_many(ticks)

    def _flush_ticks(self) -> None:
        if self._ticks is not None:
            self._ticks.flush()

    def _write_bars(self, bars: list[Bar]) -> None:
        closed = [b for b in bars if b.closed]
        if closed:
            self.db.bars.upsert_many(closed)

    async def close(self) -> None:
        """Flush what is buffered, then release the executors (the database stays open)."""
        for sub in (self._orders, self._fills, self._tick_sub, self._bars):
            if sub is not None:
                sub.close()
        # What was published but not yet taken from the mailboxes is written too.
        leftovers: list[tuple[Subscription[Any], Callable[[list[Any]], None], ThreadPoolExecutor]]
        leftovers = [
            (self._orders, self._write_orders, self._durable),
            (self._fills, self._write_fills, self._durable),
            (self._bars, self._write_bars, self._bulk),
        ]
        if self._tick_sub is not None:
            leftovers.append((self._tick_sub, self._write_ticks, self._bulk))
        for sub, write, pool in leftovers:
            with contextlib.suppress(Exception):
                batch = sub.drain()
                if batch:
                    await self._on(pool, write, batch)
        with contextlib.suppress(Exception):
            await self._on(self._bulk, self._flush_ticks)
        self._durable.shutdown(wait=True)
        self._bulk.shutdown(wait=True)


def _log_failure(future: Future[Any]) -> None:
    exc = future.exception()
    if exc is not None:
        log.error("audit entry not written: %s", exc)
