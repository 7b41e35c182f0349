"""The terminal wired to Kite: orders go through validation and risk to the (fake) Kite."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest

from app.settings import Settings
from app.wiring import build_services
from services.broker import OrderRejected
from services.brokers.kite.execution import KiteBroker
from services.brokers.kite.session import CREDENTIALS, SESSION, CredentialsMissing
from services.clock import IST, ManualClock
from services.domain import OrderRequest, OrderStatus, OrderType, Product, Side
from services.paper import PaperBroker
from services.risk import RiskLimits
from services.storage import Database
from services.validation import OrderValidationError
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import MemorySecrets, kite_settings

NOW = datetime(2026, 11, 25, 10, 0, tzinfo=IST)


def secrets_for(fake: FakeKite, token: str = "fakeaccesstoken") -> MemorySecrets:
    return MemorySecrets(
        {
            CREDENTIALS: {"api_key": fake.api_key, "api_secret": fake.api_secret},
            SESSION: {
                "access_token": token,
                "expires_at": (NOW + timedelta(hours=20)).isoformat(),
            },
        }
    )


def limit_buy(quantity: int = 2, price: str = "1570.1") -> OrderRequest:
    return OrderRequest(
        "NSE:INFY", Side.BUY, quantity, OrderType.LIMIT, Product.CNC, price=Decimal(price)
    )


def test_paper_stays_the_default() -> None:
    services = build_services(Settings())
    assert isinstance(services.broker, PaperBroker)
    assert services.live is None and services.feed_name == "simulator"


async def test_order_goes_through_risk_to_kite(fake: FakeKite) -> None:
    services = build_services(
        kite_settings(fake),
        ManualClock(NOW),
        secrets=secrets_for(fake),
        limits=RiskLimits(max_order_value=Decimal("10000")),
    )
    assert isinstance(services.broker, KiteBroker) and services.feed_name == "kite"
    await services.live.load_instruments()  # type: ignore[union-attr]
    inst = services.instrument("NSE:INFY")
    assert inst is not None and inst.tick_size == Decimal("0.1")
    # The simulator's contracts are not offered when trading on Kite.
    assert services.instrument("NSE:RELIANCE") is None

    order = await services.submit_order(limit_buy())
    assert order.status is OrderStatus.PENDING
    at_kite = fake.live_orders()
    assert len(at_kite) == 1
    assert at_kite[0]["order_id"] == order.order_id
    assert at_kite[0]["tradingsymbol"] == "INFY" and at_kite[0]["quantity"] == 2
    assert at_kite[0]["tag"] == order.request.tag
    assert services.order_list()[0].order_id == order.order_id

    # Validation with Kite's tick size: 1570.15 is off INFY's 0.1 grid; nothing is sent.
    with pytest.raises(OrderValidationError):
        await services.submit_order(limit_buy(price="1570.15"))
    # The risk engine holds back an order worth more than its limit; nothing is sent.
    with pytest.raises(OrderRejected):
        await services.submit_order(limit_buy(quantity=10))
    assert len(fake.live_orders()) == 1


async def test_no_token_means_login_needed_not_a_crash(fake: FakeKite) -> None:
    store = secrets_for(fake)
    store.entries[SESSION]["expires_at"] = (NOW - timedelta(minutes=1)).isoformat()
    services = build_services(kite_settings(fake), ManualClock(NOW), secrets=store)
    assert services.live is not None and services.live.session_valid is False
    expired: list[bool] = []
    services.on_session_expired(lambda: expired.append(True))
    fake.expire_session()
    services.session_renewed("fakeaccesstoken")  # the token is now refused by Kite
    with pytest.raises(Exception, match="session has expired"):
        await services.live.load_instruments()
    assert expired == [True]


def test_missing_api_key_is_a_clear_error(fake: FakeKite) -> None:
    with pytest.raises(CredentialsMissing, match="API key"):
        build_services(kite_settings(fake), ManualClock(NOW), secrets=MemorySecrets())


async def test_instrument_master_cached_in_the_database_daily(
    fake: FakeKite, tmp_path: Path
) -> None:
    db = Database.open(tmp_path / "p.db", b"k" * 32, create=True)
    try:
        clock = ManualClock(NOW)
        services = build_services(
            kite_settings(fake), clock, database=db, secrets=secrets_for(fake)
        )
        assert services.live is not None
        assert await services.live.load_instruments() == 8  # BCD is not traded
        downloads = fake.journal.count("GET", "/instruments")
        again = build_services(kite_settings(fake), clock, database=db, secrets=secrets_for(fake))
        assert again.live is not None
        await again.live.load_instruments()
        assert fake.journal.count("GET", "/instruments") == downloads  # from the cache
        assert again.instrument("NFO:NIFTYFUT").lot_size == 75  # type: ignore[union-attr]
        clock.advance(86_400)  # the next day: downloaded afresh
        third = build_services(
            kite_settings(fake),
            clock,
            database=db,
            secrets=secrets_for(fake),
            access_token="fakeaccesstoken",  # yesterday's stored token has expired
        )
        assert third.live is not None and third.live.session_valid
        await third.live.load_instruments()
        assert fake.journal.count("GET", "/instruments") == downloads + 1
        await services.stop()
    finally:
        db.close()


async def test_the_master_cache_belongs_to_the_broker_that_wrote_it(
    fake: FakeKite, tmp_path: Path
) -> None:
    """One profile, two brokers on one day: each reads back only its own cached master
    (Kite's int tokens are not Upstox's instrument keys), never the other's rows."""
    from app.settings import UpstoxSettings
    from tests.fakes.upstox import FakeUpstox

    db = Database.open(tmp_path / "p.db", b"k" * 32, create=True)
    later = (NOW + timedelta(hours=12)).astimezone(IST).isoformat()
    try:
        with FakeUpstox() as upstox:
            clock = ManualClock(NOW)
            kite = build_services(
                kite_settings(fake), clock, database=db, secrets=secrets_for(fake)
            )
            assert kite.live is not None
            await kite.live.load_instruments()
            kite_downloads = fake.journal.count("GET", "/instruments")
            secrets = MemorySecrets(
                {
                    "upstox": {"api_key": upstox.client_id, "api_secret": upstox.client_secret},
                    "upstox-session": {"access_token": "fake-access-token", "expires_at": later},
                }
            )
            settings = Settings(
                broker="upstox",
                watchlist=["NSE:INFY"],
                upstox=UpstoxSettings(base_url=upstox.base_url),
            )
            on_upstox = build_services(settings, clock, database=db, secrets=secrets)
            assert on_upstox.live is not None and on_upstox.live.master is None
            await on_upstox.live.load_instruments()  # downloaded: the cache is Kite's
            master = on_upstox.live.master
            assert master is not None and master.broker == "upstox"
            assert master.broker_id("NSE:INFY") == "NSE_EQ|INE009A01021"
            # Back on Kite the same day: Upstox's rows are not read as Kite tokens.
            again = build_services(
                kite_settings(fake), clock, database=db, secrets=secrets_for(fake)
            )
            assert again.live is not None
            await again.live.load_instruments()
            assert fake.journal.count("GET", "/instruments") == kite_downloads + 1
            assert again.live.master is not None
            assert isinstance(again.live.master.broker_id("NSE:INFY"), int)
            # And a second Kite start that day reads its own cache.
            third = build_services(
                kite_settings(fake), clock, database=db, secrets=secrets_for(fake)
            )
            assert third.live is not None
            await third.live.load_instruments()
            assert fake.journal.count("GET", "/instruments") == kite_downloads + 1
            assert {i.key for i in db.instruments.all()} == {
                i.key for i in again.live.master.instruments()
            }
    finally:
        db.close()
