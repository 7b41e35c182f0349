"""Idempotent order entry: a retried ``POST /v1/orders`` never places a second order.

The desktop sends every order with an ``Idempotency-Key``. Before the broker is called, the
key, a fingerprint of the body and the order tag we will send are made durable (on the
journal's synchronous=FULL connection); the answer is stored with them. A retry then gets:

* the stored answer, when there is one (even after the node restarted);
* a wait for the first attempt, when that is still running in this process, and its answer
  while that is being stored;
* for a key whose outcome is unknown (the node died or the broker did not answer): a look-up
  of the order by its tag at the broker, and only when the broker has no such order, a new
  attempt with the *same* tag;
* a refusal, when the same key comes with a different body.

Keys are scoped by API key id, so two clients cannot collide, and are kept for a day.

The answer is stored after it is sent, not before: the claim (with the tag) is what makes a
retry safe, and it is durable before the broker is called. On a profile database it is made
durable by the order's intent, not by a commit of its own, so the order path pays one fsync,
not two: the first claim of a process is committed without an fsync (the intent's synchronous
commit right after it, on the same WAL, syncs both), and every later one is answered from
memory and its row written inside the next journal transaction, the intent's or one before
it (``SqlLedger``), so it costs no trip to the journal's thread either. A process killed
before that commit has sent nothing: its claim is either in the WAL (a retry looks the tag
up at the broker first) or nowhere (the key is new to the restarted node); a power cut
loses the claim only with the intent, before the broker was called. Until the answer is
stored, a retry in this process gets it from memory, and one after a crash finds the order
by its tag. On a profile database each stored answer is one more synchronous commit on the
journal's thread; awaiting it cost the order path a median 3 ms (and its queue) per order.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from typing import Protocol, TypeVar

from services.orders import new_tag
from services.storage import Database
from services.storage.sqlcipher import Connection

T = TypeVar("T")

log = logging.getLogger(__name__)

KEEP_SECONDS = 24 * 3600
MAX_KEY_LENGTH = 128


class IdempotencyConflict(Exception):
    """The key was used before for a different request; ``str(e)`` says so."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A stored answer: the HTTP status and body the first attempt got."""

    status: int
    body: str


@dataclass(frozen=True, slots=True)
class Entry:
    scope: str
    key: str
    fingerprint: str
    tag: str
    outcome: Outcome | None


class Ledger(Protocol):
    """Where the keys live. Blocking; ``claim`` must be durable before the broker is called
    (when it returns, or with the order's intent: ``SqlLedger``)."""

    def claim_now(
        self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int
    ) -> Entry | None:
        """``claim`` without blocking, when the ledger can answer from memory; else None."""
        ...

    def claim(self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int) -> Entry: ...

    def complete(self, scope: str, key: str, outcome: Outcome) -> None: ...

    def prune(self, before_ns: int) -> int: ...


class MemoryLedger:
    """For a node without a profile database: idempotent within the process only."""

    def __init__(self) -> None:
        self._rows: dict[tuple[str, str], tuple[Entry, int]] = {}

    def claim_now(
        self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int
    ) -> Entry | None:
        return self.claim(scope, key, fingerprint, tag, now_ns)

    def claim(self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int) -> Entry:
        found = self._rows.get((scope, key))
        if found is None:
            found = (Entry(scope, key, fingerprint, tag, None), now_ns)
            self._rows[(scope, key)] = found
        return found[0]

    def complete(self, scope: str, key: str, outcome: Outcome) -> None:
        entry, created = self._rows[(scope, key)]
        self._rows[(scope, key)] = (
            Entry(entry.scope, entry.key, entry.fingerprint, entry.tag, outcome), created)

    def prune(self, before_ns: int) -> int:
        old = [k for k, (_, created) in self._rows.items() if created < before_ns]
        for k in old:
            del self._rows[k]
        return len(old)


_INSERT = (
    "INSERT OR IGNORE INTO idempotency_keys "
    "(scope, idem_key, fingerprint, tag, status, response, created_ns) "
    "VALUES (?, ?, ?, ?, NULL, NULL, ?)"
)
_COLUMNS = "scope, idem_key, fingerprint, tag, status, response, created_ns"


def _entry(row: tuple[object, ...]) -> tuple[Entry, int]:
    scope, key, fingerprint, tag, status, response, created = row
    outcome = None if status is None else Outcome(int(str(status)), str(response))
    return Entry(str(scope), str(key), str(fingerprint), str(tag), outcome), int(str(created))


class SqlLedger:
    """The ``idempotency_keys`` table of the profile database (its journal connection).

    ``intent_follows`` says, at each claim, whether the order path will commit the order's
    intent durably on this same database before its broker sees the order (the node's order
    manager journals to this database and its venue is a broker, not a venue that journals
    intents itself). Then the claim rides on that commit's fsync; otherwise it has its own.

    The first claim reads every kept key into memory (this process is the table's only
    writer while it runs); from then on, while the intent follows, a claim is answered from
    memory on the event loop (``claim_now``) and its row is written inside the next journal
    transaction, which is the order's intent or one before it: one journal job per order on
    the way to the broker, not two. Killed before that transaction, the node has sent
    nothing, and the key is new to the restarted node.
    """

    def __init__(self, db: Database, intent_follows: Callable[[], bool] = lambda: False) -> None:
        self._db = db
        self._intent_follows = intent_follows
        self._known: dict[tuple[str, str], tuple[Entry, int]] | None = None

    def claim_now(
        self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int
    ) -> Entry | None:
        known = self._known
        if known is None or not self._intent_follows():
            return None
        found = known.get((scope, key))
        if found is not None:
            return found[0]
        entry = Entry(scope, key, fingerprint, tag, None)
        known[(scope, key)] = (entry, now_ns)
        params = (scope, key, fingerprint, tag, now_ns)

        def insert(conn: Connection) -> None:
            conn.execute(_INSERT, params)

        self._db.ride_next_journal_commit(insert)
        return entry

    def claim(self, scope: str, key: str, fingerprint: str, tag: str, now_ns: int) -> Entry:
        known = self._known
        if known is None:
            rows = self._db.query(f"SELECT {_COLUMNS} FROM idempotency_keys")  # noqa: S608
            known = {(e.scope, e.key): (e, created) for e, created in map(_entry, rows)}
        durable = not self._intent_follows()
        with self._db.journal_transaction(durable=durable) as conn:
            conn.execute(_INSERT, (scope, key, fingerprint, tag, now_ns))
            row = conn.execute(
                f"SELECT {_COLUMNS} FROM idempotency_keys "  # noqa: S608
                "WHERE scope = ? AND idem_key = ?",
                (scope, key),
            ).fetchone()
        assert row is not None  # inserted or already there, in this transaction
        entry, created = _entry(row)
        known[(scope, key)] = (entry, created)
        self._known = known
        return entry

    def complete(self, scope: str, key: str, outcome: Outcome) -> None:
        with self._db.journal_transaction() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status = ?, response = ? "
                "WHERE scope = ? AND idem_key = ?",
                (outcome.status, outcome.body, scope, key),
            )
        known = self._known
        found = known.get((scope, key)) if known is not None else None
        if known is not None and found is not None:
            entry, created = found
            known[(scope, key)] = (replace(entry, outcome=outcome), created)

    def prune(self, before_ns: int) -> int:
        with self._db.journal_transaction() as conn:
            cur = conn.execute("DELETE FROM idempotency_keys WHERE created_ns < ?", (before_ns,))
            removed = int(cur.rowcount or 0)
        known = self._known
        if known is not None:
            for k in [k for k, (_, created) in known.items() if created < before_ns]:
                known.pop(k, None)
        return removed


class Offload(Protocol):
    """Runs a blocking ledger call off the loop (the recorder's journal thread)."""

    def __call__(self, fn: Callable[[], T], /) -> Awaitable[T]: ...


async def _inline(fn: Callable[[], T]) -> T:
    return fn()


# An attempt places the order with the tag and returns the answer and whether it is final
# (a broker that did not answer is not: the outcome is unknown and a retry looks it up).
Attempt = Callable[[str], Awaitable[tuple[Outcome, bool]]]
# Looks for an order with the tag (at the broker); the answer to give when one exists.
Recover = Callable[[str], Awaitable[Outcome | None]]


class IdempotentOrders:
    def __init__(
        self,
        ledger: Ledger,
        offload: Offload | None = None,
        *,
        now_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self._ledger = ledger
        self._offload: Offload = offload or _inline
        self._now_ns = now_ns
        self._running: dict[tuple[str, str], asyncio.Future[Outcome]] = {}
        self._storing: set[asyncio.Task[None]] = set()
        # Answers given and not stored yet: a retry meanwhile gets them from here.
        self._answered: dict[tuple[str, str], Outcome] = {}
        self.replays = 0

    async def settled(self) -> None:
        """Wait until every answer given so far is stored (tests, an orderly shutdown)."""
        while self._storing:
            await asyncio.gather(*self._storing, return_exceptions=True)

    def _store_later(self, scope: str, key: str, outcome: Outcome) -> None:
        """Store the answer on the ledger's thread, in order with what follows it there."""

        self._answered[(scope, key)] = outcome

        async def store() -> None:
            try:
                await self._offload(lambda: self._ledger.complete(scope, key, outcome))
            except Exception:  # the claim stays: a retry finds the order by its tag
                log.exception("storing the answer for Idempotency-Key %r failed", key)
            finally:
                self._answered.pop((scope, key), None)

        task = asyncio.get_running_loop().create_task(store(), name="idempotency-store")
        self._storing.add(task)
        task.add_done_callback(self._storing.discard)

    async def prune(self, keep_seconds: float = KEEP_SECONDS) -> int:
        before = self._now_ns() - int(keep_seconds * 1e9)
        return await self._offload(lambda: self._ledger.prune(before))

    async def execute(
        self, scope: str, key: str, fingerprint: str, attempt: Attempt, recover: Recover
    ) -> tuple[Outcome, bool]:
        """Return the answer for this key and whether it is a replay of an earlier one."""
        running = self._running.get((scope, key))
        if running is not None:
            outcome = await asyncio.shield(running)
            self.replays += 1
            return outcome, True
        done: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        self._running[(scope, key)] = done
        try:
            outcome, replayed = await self._execute(scope, key, fingerprint, attempt, recover)
        except BaseException as e:
            done.set_exception(e)
            done.exception()  # retrieved: a waiter re-raises it, no one else must
            raise
        else:
            done.set_result(outcome)
            return outcome, replayed
        finally:
            del self._running[(scope, key)]

    async def _execute(
        self, scope: str, key: str, fingerprint: str, attempt: Attempt, recover: Recover
    ) -> tuple[Outcome, bool]:
        tag = new_tag()
        now = self._now_ns()
        entry = self._ledger.claim_now(scope, key, fingerprint, tag, now)
        if entry is None:
            entry = await self._offload(
                lambda: self._ledger.claim(scope, key, fingerprint, tag, now))
        if entry.fingerprint != fingerprint:
            raise IdempotencyConflict(
                f"Idempotency-Key {key!r} was used for a different order; use a new key "
                "for a new order"
            )
        answer = entry.outcome or self._answered.get((scope, key))
        if answer is not None:
            self.replays += 1
            return answer, True
        if entry.tag != tag:  # claimed before, outcome unknown: did the broker get it?
            found = await recover(entry.tag)
            if found is not None:
                await self._offload(lambda: self._ledger.complete(scope, key, found))
                self.replays += 1
                return found, True
        outcome, final = await attempt(entry.tag)
        if final:
            self._store_later(scope, key, outcome)
        return outcome, False
