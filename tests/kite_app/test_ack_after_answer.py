"""The acknowledgement is journaled after the answer, not before it: what a crash in between
leaves is the durable intent, and the restart resolves it by its tag at Kite without sending
the order again. Real parts: the encrypted profile database, kiteconnect against the fake."""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
from pathlib import Path

import pytest

from app.wiring import build_services
from services.brokers.live import resolve_unacknowledged
from services.clock import ManualClock
from services.domain import OrderStatus
from services.storage import Database
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_wiring import NOW, limit_buy, secrets_for


def crash_copy(db_path: Path, into: Path) -> Path:
    """The profile as a power cut would leave it now: the file and its write-ahead log."""
    into.mkdir()
    for suffix in ("", "-wal"):
        source = Path(f"{db_path}{suffix}")
        if source.exists():
            shutil.copyfile(source, into / f"{db_path.name}{suffix}")
    return into / db_path.name


async def test_a_crash_between_the_answer_and_the_ack_is_resolved_by_tag_on_restart(
    fake: FakeKite, tmp_path: Path
) -> None:
    key = os.urandom(32)
    path = tmp_path / "p.db"
    with Database.open(path, key, create=True) as db:
        services = build_services(kite_settings(fake), ManualClock(NOW), database=db,
                                  secrets=secrets_for(fake))  # fmt: skip
        services.bus.bind_loop(asyncio.get_running_loop())
        assert services.live is not None and services.recorder is not None
        await services.live.load_instruments()
        order = await services.submit_order(limit_buy())
        # No await since the answer: the process dies here, before the queued ack ran.
        crashed = crash_copy(path, tmp_path / "crashed")
        tag = order.request.tag
        assert tag is not None and order.order_id != tag
        await services.orders.settle_journal()  # the process that lived: the ack lands
        assert db.orders.get(tag) is None
        acked = db.orders.get(order.order_id)
        assert acked is not None and acked.request.tag == tag
        assert "order_placed" in [row.kind for row in db.audit.rows()]
        assert services.orders.journal_errors == 0
        await services.recorder.close()

    with Database.open(crashed, key) as db:
        intent = db.orders.get(tag)
        assert intent is not None and intent.status is OrderStatus.PENDING  # durable intent
        assert db.orders.get(order.order_id) is None  # and no ack
        restarted = build_services(kite_settings(fake), ManualClock(NOW), database=db,
                                   secrets=secrets_for(fake))  # fmt: skip
        restarted.bus.bind_loop(asyncio.get_running_loop())
        assert restarted.recorder is not None
        resolved = await resolve_unacknowledged(restarted.recorder, restarted.broker,
                                                NOW.date(), lambda: NOW)  # fmt: skip
        assert [(o.order_id, o.request.tag) for o in resolved] == [(order.order_id, tag)]
        await restarted.recorder.close()
        assert db.orders.get(tag) is None
        found = db.orders.get(order.order_id)
        assert found is not None and found.request.tag == tag
        assert "order_intent_resolved" in [row.kind for row in db.audit.rows()]
    assert fake.journal.count("POST", "/orders/") == 1  # never sent twice


async def test_a_failed_ack_write_is_counted_and_logged_not_raised(
    fake: FakeKite, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = Database.open(tmp_path / "p.db", os.urandom(32), create=True)
    services = build_services(kite_settings(fake), ManualClock(NOW), database=db,
                              secrets=secrets_for(fake))  # fmt: skip
    services.bus.bind_loop(asyncio.get_running_loop())
    assert services.live is not None and services.recorder is not None
    await services.live.load_instruments()
    order = await services.submit_order(limit_buy())
    db.close()  # the disk went away after the broker's answer
    with caplog.at_level(logging.ERROR, logger="services.orders"):
        await services.orders.settle_journal()
    assert order.status is OrderStatus.PENDING and fake.live_orders()[0]["tag"] == order.request.tag
    assert services.orders.journal_errors == 1
    assert f"order {order.request.tag} failed" in caplog.text
    assert "resolves it by its tag" in caplog.text
    await services.recorder.close()
