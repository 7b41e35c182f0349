"""Angel One login: client code, PIN and a TOTP (pyotp) through the SDK's loginByPassword."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

import pyotp
import pytest

from services.brokers import registry
from services.brokers.angelone.session import (
    CREDENTIALS,
    SESSION,
    AngelSession,
    session_expiry,
)
from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.ports import BrokerSession, InteractiveSession, LoginKind
from services.bus import EventBus
from services.clock import IST, ManualClock
from services.domain import OrderRequest, OrderType, Product, Side
from tests.brokers.angelone.conftest import endpoints_for
from tests.fakes.angelone import FakeAngel
from tests.kite_app.conftest import MemorySecrets

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=IST)


def credentials(fake: FakeAngel, *, seed: bool = True) -> MemorySecrets:
    fields = {"api_key": fake.api_key, "client_code": fake.client_code, "pin": fake.pin}
    if seed:
        fields["totp_secret"] = fake.totp_secret
    return MemorySecrets({CREDENTIALS: fields})


def build(fake: FakeAngel, secrets: MemorySecrets, clock: ManualClock) -> registry.BrokerParts:
    return registry.build(
        "angelone",
        registry.BrokerContext(
            clock,
            EventBus(),
            secrets=secrets,
            endpoints=endpoints_for(fake),
            options={"timeout": 2.0, "book_interval": 0.0},
        ),
    )


def test_session_ends_at_midnight_ist() -> None:
    assert session_expiry(NOON) == datetime(2026, 11, 26, 0, 0, tzinfo=IST)
    late = datetime(2026, 11, 25, 23, 59, tzinfo=IST)
    assert session_expiry(late) == datetime(2026, 11, 26, 0, 0, tzinfo=IST)


async def test_login_with_a_generated_code_stores_the_day_and_trades(fake: FakeAngel) -> None:
    secrets = credentials(fake)
    clock = ManualClock(NOON)
    parts = build(fake, secrets, clock)
    session = parts.session
    assert isinstance(session, AngelSession) and isinstance(session, BrokerSession)
    assert session.login_kind is LoginKind.TOTP and session.login_url() is None
    assert session.current(clock.now()) is None
    token = await session.complete_login({})
    assert token.expires_at == datetime(2026, 11, 26, 0, 0, tzinfo=IST)
    stored = secrets.entries[SESSION]
    assert stored["access_token"] == token.access_token and stored["client_code"] == "A1234567"
    assert stored["feed_token"] in fake.feed_tokens
    assert session.current(clock.now()) == token
    # The same parts trade at once with the new session (no rebuild).
    assert parts.execution is not None
    order = await parts.execution.place_order(
        OrderRequest("NSE:SBIN", Side.BUY, 1, OrderType.LIMIT, Product.CNC,
                     price=Decimal("800.00"), tag="LOGIN1")
    )  # fmt: skip
    assert order.order_id in fake.orders
    # A restart the same day uses the stored session; after midnight it is gone.
    again = build(fake, secrets, clock)
    assert again.execution is not None and await again.execution.orders()
    clock.advance(13 * 3600)
    assert session.current(clock.now()) is None


async def test_a_typed_code_works_without_a_stored_seed(fake: FakeAngel) -> None:
    secrets = credentials(fake, seed=False)
    session = build(fake, secrets, ManualClock(NOON)).session
    assert session is not None
    assert await session.renew(NOON) is None  # nothing to renew with
    with pytest.raises(CredentialsMissing, match="six-digit TOTP"):
        await session.complete_login({})
    token = await session.complete_login({"totp": fake.totp()})
    assert token.access_token in fake.jwts


async def test_wrong_codes_and_pins_are_refused(fake: FakeAngel) -> None:
    secrets = credentials(fake, seed=False)
    session = build(fake, secrets, ManualClock(NOON)).session
    assert session is not None
    stale = pyotp.TOTP(fake.totp_secret).at(datetime.now() - timedelta(minutes=5))
    with pytest.raises(SessionExpired, match="Invalid totp"):
        await session.complete_login({"totp": stale})
    with pytest.raises(SessionExpired, match="six digits"):
        await session.complete_login({"totp": "12ab"})
    secrets.entries[CREDENTIALS]["pin"] = "0000"
    with pytest.raises(SessionExpired, match="AB1007"):
        await session.complete_login({"totp": fake.totp()})
    assert SESSION not in secrets.entries


async def test_missing_credentials_say_which_command(fake: FakeAngel) -> None:
    secrets = MemorySecrets({CREDENTIALS: {"api_key": fake.api_key}})
    session = build(fake, secrets, ManualClock(NOON)).session
    assert session is not None
    with pytest.raises(CredentialsMissing, match="dalal credentials set angelone"):
        session.login_url()


async def test_renewal_logs_in_again_from_the_seed(fake: FakeAngel) -> None:
    secrets = credentials(fake)
    session = build(fake, secrets, ManualClock(NOON)).session
    assert session is not None
    first = await session.complete_login({})
    renewed = await session.renew(NOON)
    assert renewed is not None and renewed.access_token != first.access_token
    assert isinstance(session, InteractiveSession)
    interactive = await session.login(lambda url: None)  # no browser: the seed's code
    assert interactive.access_token in fake.jwts
    session.forget()
    assert session.current(NOON) is None


async def test_the_generic_login_asks_for_the_code_only_without_a_seed(fake: FakeAngel) -> None:
    """``interactive_login`` (the one entry of ``dalal login`` and the Broker menu) hands the
    flow a prompt; Angel's flow asks it for the TOTP code only when no seed is stored."""
    from services.brokers.live import interactive_login
    from services.brokers.ports import LoginField

    asked: list[LoginField] = []

    async def answer(field: LoginField) -> str:
        asked.append(field)
        return fake.totp()

    def no_browser(url: str) -> None:
        raise AssertionError(f"Angel One has no login page, yet {url} was opened")

    typed = build(fake, credentials(fake, seed=False), ManualClock(NOON)).session
    token = await interactive_login("angelone", typed, no_browser, prompt=answer)
    assert token.access_token in fake.jwts
    assert [(f.name, f.secret) for f in asked] == [("totp", True)]
    seeded = build(fake, credentials(fake), ManualClock(NOON)).session
    await interactive_login("angelone", seeded, no_browser, prompt=answer)
    assert len(asked) == 1  # the seed made the code
    # Without a prompt and without a seed: the one-line "how to" message, no login call.
    calls = fake.count("loginByPassword")
    with pytest.raises(CredentialsMissing, match="six-digit TOTP"):
        await interactive_login("angelone", typed, no_browser)
    assert fake.count("loginByPassword") == calls
