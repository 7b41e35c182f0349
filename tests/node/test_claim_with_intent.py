"""The idempotency claim rides on the intent's fsync: one synchronous commit per order on the
node's path to the broker, not two, and no crash window that can place an order twice.

A claim is committed without its own fsync when the order's intent follows it on the same
database; the intent's synchronous commit then syncs the WAL, the claim's frames included.
"""

from __future__ import annotations

import asyncio
import os
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


def test_a_node_killed_between_claim_and_intent_places_the_order_once(tmp_path: Path) -> None:
    path = tmp_path / "terminal.db"
    key = os.urandom(32)
    Database.open(path, key, create=True).close()
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIM_THEN_DIE, str(path)], cwd=REPO, text=True,
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert child.stdin is not None and child.stdout is not None
        child.stdin.write(key.hex() + "\n")
        child.stdin.flush()
        assert child.stdout.readline().split() == ["claimed", "dtclaimed0001"]
    finally:
        child.kill()  # between the claim and the intent: no orderly anything
        child.wait(30)

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
            async with http.post(srv.base + "/v1/orders", json=ORDER,
                                 headers=auth(token, "one-fsync")) as r:  # fmt: skip
                assert r.status == 201, await r.text()
    finally:
        journal.set_trace_callback(None)
    done = _transactions(statements)
    claim = next(i for i, (_, sql) in enumerate(done)
                 if any(s.startswith("INSERT OR IGNORE INTO idempotency_keys") for s in sql))
    mode, _ = done[claim]
    assert mode == "NORMAL"  # no fsync of its own
    # The very next commit on the connection is the order's intent, synchronous=FULL: its
    # fsync makes the claim durable before the broker sees the order.
    intent_mode, intent = done[claim + 1]
    assert intent_mode == "FULL"
    assert any("INTO orders" in s for s in intent) and not any("DELETE" in s for s in intent)
    # And the connection is back to FULL for every commit after the claim.
    assert {m for m, _ in done[claim + 1 :]} == {"FULL"}
