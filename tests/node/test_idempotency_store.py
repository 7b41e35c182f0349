"""The answer to an order is stored after it is sent: the order path does not wait for that
commit, and a retry still gets the first answer, never a second attempt."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

import pytest

from services.node.idempotency import IdempotencyConflict, IdempotentOrders, MemoryLedger, Outcome

T = TypeVar("T")


async def test_the_answer_is_not_awaited_and_a_retry_still_replays_it() -> None:
    ledger = MemoryLedger()
    journal = ThreadPoolExecutor(1)  # the journal's single thread, as on the node
    release = threading.Event()
    completes: list[str] = []
    complete = ledger.complete

    def slow_complete(scope: str, key: str, outcome: Outcome) -> None:
        release.wait(10)  # a slow synchronous commit
        completes.append(key)
        complete(scope, key, outcome)

    ledger.complete = slow_complete  # type: ignore[method-assign]

    async def offload(fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(journal, fn)

    orders = IdempotentOrders(ledger, offload)
    attempts: list[str] = []

    async def attempt(tag: str) -> tuple[Outcome, bool]:
        attempts.append(tag)
        return Outcome(201, f'{{"tag": "{tag}"}}'), True

    async def recover(tag: str) -> Outcome | None:
        raise AssertionError("a retry behind a stored answer never looks the order up")

    first, replayed = await asyncio.wait_for(
        orders.execute("k", "idem-1", "fp", attempt, recover), 5
    )  # answered while the commit is still held
    assert not replayed and completes == []
    # A retry while the commit is still held gets the first answer, never a second attempt
    # (nor a look-up at the broker).
    again, replayed = await asyncio.wait_for(
        orders.execute("k", "idem-1", "fp", attempt, recover), 5
    )
    assert replayed and again == first and len(attempts) == 1 and completes == []
    # With another body it is refused, as after the commit.
    with pytest.raises(IdempotencyConflict):
        await asyncio.wait_for(orders.execute("k", "idem-1", "other", attempt, recover), 5)
    release.set()
    await orders.settled()
    assert completes == ["idem-1"]
    # And once stored, from the ledger.
    again, replayed = await orders.execute("k", "idem-1", "fp", attempt, recover)
    assert replayed and again == first and len(attempts) == 1
    journal.shutdown()
