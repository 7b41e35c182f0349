"""The idempotency claim rides on the intent's fsync: one synchronous commit per order on the
node's path to the broker, not two, and no crash window that can place an order twice.

A claim is committed without its own fsync when the order's intent follows it on the same
database; the intent's synchronous commit then syncs the WAL, the claim's frames included.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any, cast

import aiohttp

from app.headless import ServerOptions
from services.apikeys import Scope
from services.node.idempotency import IdempotentOrders, Outcome, SqlLedger
from services.storage import Database
from tests.api.server import running_server
from tests.models_app.conftest import database  # noqa: F401 (fixture)
from tests.node.test_node_api import ORDER, auth, settings

REPO = Path(__file__).resolve().parents[2]

# A node process that claims a key (as the order path does, the intent to follow) and is
# killed before the intent's commit: SIGKILL from the test, at the instant it says "claimed".
CLAIM_THEN_DIE = """
import sys, time
from pathlib import Path
from services.storage import Database
from services.node.idempotency import SqlLedger
db = Database.open(Path(sys.argv[1]), bytes.fromhex(sys.stdin.readline().strip()))
entry = SqlLedger(db, lambda: True).claim("desktop", "k-crash", "fp", "dtclaimed0001", 1)
print("claimed", entry.tag, flush=True)
time.sleep(600)
"""


def _claim_then_die(script: str, path: Path, key: bytes, tag: str) -> None:
    """Run a node process on a new profile until it says it claimed ``tag``, then kill it:
    no orderly anything between the claim and the intent."""
    Database.open(path, key, create=True).close()
    child = subprocess.Popen(
        [sys.executable, "-c", script, str(path)], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(key.hex() + "\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["claimed", tag]
    finally:
        child.kill()
        child.wait(30)


def test_a_node_killed_between_claim_and_intent_places_the_order_once(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    key = os.urandom(32)
    _claim_then_die(CLAIM_THEN_DIE, path, key, "dtclaimed0001")

    looked_up: list[str] = []
    sent: list[str] = []

    async def recover(tag: str) -> Outcome | None:
        looked_up.append(tag)  # the broker is asked first: it has no order with this tag
        return None

    async def attempt(tag: str) -> tuple[Outcome, bool]:
        sent.append(tag)
        return Outcome(201, f'{{"tag": "{tag}"}}'), True

    async def retry_twice() -> list[tuple[Outcome, bool]]:
        with Database.open(path, key) as db:
            orders = IdempotentOrders(SqlLedger(db, lambda: True))
            first = await orders.execute("desktop", "k-crash", "fp", attempt, recover)
            await orders.settled()
            again = await orders.execute("desktop", "k-crash", "fp", attempt, recover)
            return [first, again]

    (first, first_replayed), (again, again_replayed) = asyncio.run(retry_twice())
    # The claim survived the kill: the retry looked for its tag and sent under that tag only.
    assert looked_up == ["dtclaimed0001"]
    assert sent == ["dtclaimed0001"]
    assert not first_replayed and again_replayed and again == first


def _transactions(statements: list[str]) -> list[tuple[str, list[str]]]:
    """Each committed transaction on the connection: its synchronous mode and statements."""
    mode, current, done = "FULL", list[str](), list[tuple[str, list[str]]]()
    for sql in statements:
        text = " ".join(sql.split())
        if text.startswith("PRAGMA synchronous"):
            mode = text.rsplit("=", 1)[1].strip()
        elif text == "BEGIN IMMEDIATE":
            current = []
        elif text == "COMMIT":
            done.append((mode, current))
        else:
            current.append(text)
    return done


async def test_the_claim_is_made_durable_by_the_intents_commit(
    database: Database,  # noqa: F811
) -> None:
    statements: list[str] = []
    journal = cast(Any, database)._journal_conn  # the synchronous=FULL connection
    journal.set_trace_callback(statements.append)
    try:
        async with (
            running_server(ServerOptions(database=database), settings=settings()) as srv,
            aiohttp.ClientSession() as http,
        ):
            token = srv.key(Scope.TRADE, Scope.READ)
            for idem in ("first-order", "second-order"):
                async with http.post(srv.base + "/v1/orders", json=ORDER,
                                     headers=auth(token, idem)) as r:  # fmt: skip
                    assert r.status == 201, await r.text()
    finally:
        journal.set_trace_callback(None)
    done = _transactions(statements)

    def claim_of(idem: str) -> int:
        return next(i for i, (_, sql) in enumerate(done) if any(
            s.startswith("INSERT OR IGNORE INTO idempotency_keys") and idem in s for s in sql))

    def intent_of(claim: int) -> int:
        tag = re.findall(r"'(dt[0-9a-f]{12})'", done[claim][1][0])[0]
        return next(i for i, (_, sql) in enumerate(done) if any(
            "INTO orders" in s and tag in s for s in sql) and not any("DELETE" in s for s in sql))

    # The node's first claim reads the kept keys and commits without an fsync of its own;
    # the very next commit is the order's intent, synchronous=FULL, whose fsync makes the
    # claim durable before the broker sees the order.
    first = claim_of("first-order")
    assert done[first][0] == "NORMAL" and len(done[first][1]) == 2  # the insert, its read
    assert intent_of(first) == first + 1 and done[first + 1][0] == "FULL"
    # Later claims are answered from memory and ride, first thing, in the next transaction
    # of the journal: a FULL one no later than the order's intent (the intent's own, or the
    # one storing the previous order's answer that was still queued).
    second = claim_of("second-order")
    mode, sql = done[second]
    assert mode == "FULL" and sql[0].startswith("INSERT OR IGNORE INTO idempotency_keys")
    assert len(sql) > 1 and second <= intent_of(second)
    # And the connection is back to FULL for every commit after the first claim.
    assert {m for m, _ in done[first + 1 :]} == {"FULL"}
    # Both keys are on disk with their answers.
    rows = database.query("SELECT idem_key, status FROM idempotency_keys ORDER BY idem_key")
    assert rows == [("first-order", 201), ("second-order", 201)]


# A node whose claim is answered from memory (the keys are loaded) and that is killed before
# the next journal transaction: the claim was never written, and nothing was sent.
CLAIM_IN_MEMORY_THEN_DIE = """
import sys, time
from pathlib import Path
from services.storage import Database
from services.node.idempotency import SqlLedger
db = Database.open(Path(sys.argv[1]), bytes.fromhex(sys.stdin.readline().strip()))
ledger = SqlLedger(db, lambda: True)
ledger.claim("desktop", "k-loaded", "fp", "dtloaded00001", 1)  # loads the keys
entry = ledger.claim_now("desktop", "k-memory", "fp", "dtmemory00001", 2)
print("claimed", entry.tag, flush=True)
time.sleep(600)
"""


def test_a_node_killed_before_an_in_memory_claim_is_written_places_the_order_once(
    tmp_path: Path,
) -> None:
    path = tmp_path / "terminal.db"
    key = os.urandom(32)
    _claim_then_die(CLAIM_IN_MEMORY_THEN_DIE, path, key, "dtmemory00001")

    looked_up: list[str] = []
    sent: list[str] = []

    async def recover(tag: str) -> Outcome | None:
        looked_up.append(tag)
        return None

    async def attempt(tag: str) -> tuple[Outcome, bool]:
        sent.append(tag)
        return Outcome(201, f'{{"tag": "{tag}"}}'), True

    async def retry() -> tuple[Outcome, bool]:
        with Database.open(path, key) as db:
            orders = IdempotentOrders(SqlLedger(db, lambda: True))
            answer = await orders.execute("desktop", "k-memory", "fp", attempt, recover)
            await orders.settled()
            return answer

    _, replayed = asyncio.run(retry())
    # A key new to the restarted node: one attempt under a fresh tag, no look-up needed.
    assert looked_up == [] and len(sent) == 1 and sent[0] != "dtmemory00001"
    assert not replayed
