"""``services.brokers.live`` on Kite's fake: feed and venue chosen apart, intents resolved by
tag after a crash, the token's expiry, the daily master cache."""

from __future__ import annotations

import asyncio
import os
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.settings import KiteSettings, Settings
from app.wiring import build_services
from services.brokers.live import resolve_unacknowledged
from services.bus import CONNECTION
from services.clock import ManualClock
from services.domain import Order, OrderRequest, OrderStatus, OrderType, Product, Side
from services.paper import PaperBroker
from services.recorder import Recorder
from services.storage import Database
from tests.fakes.kite_server import FakeKite
from tests.kite_app.test_kite_wiring import NOW, limit_buy, secrets_for


def paper_on_kite(fake: FakeKite) -> Settings:
    return Settings(
        broker="paper",
        feed="kite",
        watchlist=["NSE:INFY"],
        kite=KiteSettings(api_root=fake.base_url, ticker_url=f"ws://127.0.0.1:{fake.port}/ws"),
    )


async def test_paper_orders_on_live_kite_data(fake: FakeKite) -> None:
    services = build_services(paper_on_kite(fake), ManualClock(NOW), secrets=secrets_for(fake))
    services.bus.bind_loop(asyncio.get_running_loop())
    live = services.live
    assert live is not None and live.execution is None and services.feed_name == "kite"
    assert isinstance(services.broker, PaperBroker)
    assert services.reconciler is None  # nothing at Kite to reconcile against
    assert await live.load_instruments() == 8
    inst = services.instrument("NSE:INFY")
    assert inst is not None and inst.tick_size == Decimal("0.1")  # Kite's master, not simulated
    assert services.instrument("NSE:RELIANCE") is None  # no simulator contracts
    order = await services.submit_order(limit_buy())
    assert order.order_id.startswith("PA") and order.status is OrderStatus.OPEN
    assert fake.journal.count("POST", "/orders/") == 0  # not one order reached Kite


def test_real_orders_need_the_brokers_own_data() -> None:
    with pytest.raises(ValueError, match="need its own market data"):
        Settings(broker="kite", feed="simulator")


async def test_an_intent_without_an_ack_is_found_by_its_tag_before_anything_else(
    fake: FakeKite, tmp_path: Path
) -> None:
    services = build_services(
        Settings(
            broker="kite",
            kite=KiteSettings(api_root=fake.base_url, ticker_url="ws://127.0.0.1:9/ws"),
        ),
        ManualClock(NOW),
        secrets=secrets_for(fake),
    )
    services.bus.bind_loop(asyncio.get_running_loop())
    kite = services.broker
    with Database.open(tmp_path / "p.db", os.urandom(32), create=True) as db:
        journal = Recorder(db, services.bus, record_ticks=False)
        sent = OrderRequest(
            "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1500"),
            tag="dtcrashed01",
        )
        lost = OrderRequest(
            "NSE:INFY", Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1500"),
            tag="dtneversent",
        )
        for request in (sent, lost):  # the journal's intents, written before the crash
            intent = Order(request.tag or "", request, OrderStatus.PENDING, NOW, NOW)
            await journal.record_intent(intent)
        placed = await kite.place_order(sent)  # it reached Kite; the process died before the ack
        resolved = await resolve_unacknowledged(journal, kite, NOW.date(), lambda: NOW)
        by_tag = {o.request.tag: o for o in resolved}
        assert by_tag["dtcrashed01"].order_id == placed.order_id
        assert by_tag["dtneversent"].status is OrderStatus.REJECTED
        assert "not placed" in by_tag["dtneversent"].status_message
        await journal.close()
        # The journal: the intent replaced by Kite's order, the other closed as not placed.
        assert db.orders.get("dtcrashed01") is None
        stored = db.orders.get(placed.order_id)
        assert stored is not None and stored.request.tag == "dtcrashed01"
        never = db.orders.get("dtneversent")
        assert never is not None and never.status is OrderStatus.REJECTED
        assert "order_intent_resolved" in [row.kind for row in db.audit.rows()]
    assert fake.journal.count("POST", "/orders/") == 1  # nothing was sent again


async def test_a_token_past_its_expiry_is_expired_before_kite_says_so(fake: FakeKite) -> None:
    clock = ManualClock(NOW)
    services = build_services(
        Settings(broker="kite", kite=KiteSettings(api_root=fake.base_url)),
        clock,
        secrets=secrets_for(fake),
    )
    services.bus.bind_loop(asyncio.get_running_loop())
    live = services.live
    assert live is not None and live.session_valid and live.expires_at is not None
    expired: list[str] = []
    services.on_session_expired(lambda: expired.append("now"))
    states = services.bus.subscribe(CONNECTION, "test")
    assert live.check_expiry()
    clock.set(live.expires_at + timedelta(seconds=1))
    assert not live.check_expiry()
    assert expired == ["now"] and live.session_state == "expired"
    assert [s.component for s in states.drain()] == ["broker:zerodha"]


async def test_the_master_is_downloaded_once_a_day_into_the_profile(
    fake: FakeKite, tmp_path: Path
) -> None:
    key = os.urandom(32)
    settings = Settings(broker="kite", kite=KiteSettings(api_root=fake.base_url))
    with Database.open(tmp_path / "p.db", key, create=True) as db:
        for _ in range(2):
            services = build_services(
                settings, ManualClock(NOW), database=db, secrets=secrets_for(fake)
            )
            live = services.live
            assert live is not None
            assert await live.load_instruments() == 8
            assert live.master is not None and live.master.broker_id("NSE:INFY") == 408065
        assert fake.journal.count("GET", "/instruments") == 1
