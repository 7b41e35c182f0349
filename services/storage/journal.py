"""Crash-safe writers: the order journal (durable per call) and the batched tick writer.

The order manager calls ``record_intent`` *before* it sends an order: if the process dies
between the two, the restart finds a PENDING order to reconcile with the broker instead of an
order the terminal never heard of. Ticks are cheap to lose and expensive to fsync, so they
are buffered and written one transaction per batch.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import itemgetter
from typing import Any

from services.domain import Fill, Order, Tick
from services.storage import codec
from services.storage.database import Database


class OrderJournal:
    """Each call commits in its own synchronous=FULL transaction and is durable at return."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record_intent(self, order: Order) -> None:
        with self._db.journal_transaction() as c:
            self._db.orders.upsert(c, order)

    def record_ack(self, intent_id: str, order: Order) -> None:
        """Replace the intent row written before sending with the broker's acknowledged order.

        One transaction, so a crash leaves either the intent (to reconcile by its tag) or the
        acknowledged order, never both and never neither.
        """
        with self._db.journal_transaction() as c:
            if intent_id != order.order_id:
                self._db.orders.delete(c, intent_id)
            self._db.orders.upsert(c, order)

    def record_update(self, order: Order) -> None:
        with self._db.journal_transaction() as c:
            self._db.orders.upsert(c, order)

    def record_updates(self, orders: Sequence[Order]) -> None:
        """A batch of order updates in one transaction: one fsync for the batch, not each."""
        with self._db.journal_transaction() as c:
            for order in orders:
                self._db.orders.upsert(c, order)

    def record_fill(self, fill: Fill) -> None:
        with self._db.journal_transaction() as c:
            self._db.fills.insert(c, fill)

    def record_fill_and_order(self, fill: Fill, order: Order) -> None:
        """A fill and the order state it produces, atomically."""
        with self._db.journal_transaction() as c:
            self._db.fills.insert(c, fill)
            self._db.orders.upsert(c, order)


_by_instrument = itemgetter(0)


class TickWriter:
    """Encodes ticks as they come and writes them in batches, one transaction each.

    Encoding happens in ``add``/``add_many`` so that ``flush`` holds the database lock only
    for the insert. Not thread-safe: one writer per feed task (run it off the event loop).
    What a crash can lose is what was added since the last ``flush`` (at most
    ``batch_size`` ticks, plus the flush in progress): the recorder flushes on a timer too.
    """

    def __init__(self, db: Database, batch_size: int = 1000) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be positive")
        self._db = db
        self.batch_size = batch_size
        self._pending: list[tuple[Any, ...]] = []
        self.written = 0

    @property
    def pending(self) -> int:
        return len(self._pending)

    def add(self, tick: Tick) -> bool:
        """Buffer ``tick``; flush and return True when the batch is full."""
        return self.add_many((tick,)) > 0

    def add_many(self, ticks: Sequence[Tick]) -> int:
        """Encode and buffer a batch (one call per mailbox batch, not per tick); flush each
        full batch. Return how many flushes ran."""
        ids = self._db.ticks.key_ids({t.key for t in ticks})
        flushes = 0
        start = 0
        while start < len(ticks):
            room = self.batch_size - len(self._pending)
            chunk = ticks[start : start + room]
            start += len(chunk)
            self._pending += codec.tick_rows(chunk, ids)
            if len(self._pending) >= self.batch_size:
                self.flush()
                flushes += 1
        return flushes

    def flush(self) -> int:
        if not self._pending:
            return 0
        rows, self._pending = self._pending, []
        # In instrument order: the (instrument, time) index then takes a batch page by page
        # instead of at thousands of scattered points (rows are appended to the table in
        # this order; sorting is stable, so each instrument's ticks keep their arrival order,
        # which is all the readers' "time, then rowid" order asks of it).
        rows.sort(key=_by_instrument)
        with self._db.transaction() as c:
            self._db.ticks.insert_rows(c, rows)
        self.written += len(rows)
        return len(rows)
