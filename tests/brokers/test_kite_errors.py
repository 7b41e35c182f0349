"""Kite's error responses, through the real SDK, become clear and distinct BrokerErrors."""

from __future__ import annotations

from decimal import Decimal

import pytest
import requests

from services.broker import BrokerError, OrderChange, OrderRejected
from services.brokers.kite.errors import (
    BrokerUnavailable,
    DataError,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidInput,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    SessionExpired,
    map_error,
    outcome_unknown,
)
from services.brokers.kite.execution import KiteBroker
from services.clock import ManualClock
from services.domain import OrderRequest, OrderType, Product, Side
from tests.brokers.conftest import make_broker
from tests.fakes.kite_server import FakeKite


def limit(key: str = "NSE:INFY") -> OrderRequest:
    return OrderRequest(key, Side.BUY, 1, OrderType.LIMIT, Product.CNC, price=Decimal("1570"))


async def test_input_exception_names_kites_reason(broker: KiteBroker) -> None:
    with pytest.raises(InvalidInput) as info:
        await broker.place_order(limit("NSE:NOSUCHSYMBOL"))
    assert "expired or does not exist" in str(info.value)
    assert str(info.value).startswith("place order: Kite rejected the request")
    assert info.value.rule == "broker-input"


async def test_order_exception_after_too_many_modifications(
    fake: FakeKite, broker: KiteBroker
) -> None:
    order = await broker.place_order(limit())
    for i in range(25):
        await broker.modify_order(order.order_id, OrderChange(price=Decimal(1500 + i)))
    with pytest.raises(OrderRejected, match="Maximum allowed order modifications") as info:
        await broker.modify_order(order.order_id, OrderChange(price=Decimal(1400)))
    assert not isinstance(info.value, InvalidInput)


async def test_network_exception_503_is_broker_unavailable(
    fake: FakeKite, broker: KiteBroker
) -> None:
    fake.inject("orders", "503")
    with pytest.raises(BrokerUnavailable, match="cannot reach the exchange's order system"):
        await broker.orders()


async def test_429_is_rate_limited(fake: FakeKite, broker: KiteBroker) -> None:
    fake.inject("any", "429")
    with pytest.raises(RateLimited, match="too many requests"):
        await broker.holdings()


async def test_500_html_page_is_broker_unavailable_not_a_crash(
    fake: FakeKite, broker: KiteBroker
) -> None:
    fake.inject("any", "500_html")
    with pytest.raises(BrokerUnavailable, match="error page"):
        await broker.positions()


async def test_expired_session_is_a_distinct_error_and_prompts_relogin(
    fake: FakeKite, clock: ManualClock
) -> None:
    prompts: list[str] = []
    broker = make_broker(fake, clock, on_session_expired=lambda: prompts.append("login"))
    fake.expire_session()
    with pytest.raises(SessionExpired, match="log in to Kite again"):
        await broker.funds()
    with pytest.raises(SessionExpired):
        await broker.place_order(limit())
    assert prompts == ["login", "login"]
    assert fake.live_orders() == []


async def test_one_shot_token_exception_on_placement_is_not_retried(
    fake: FakeKite, broker: KiteBroker
) -> None:
    fake.inject("place", "token")
    with pytest.raises(SessionExpired):
        await broker.place_order(limit())
    assert broker.placement_attempts == 1


async def test_bad_login_checksum_is_session_expired(fake: FakeKite, broker: KiteBroker) -> None:
    token = fake.issue_request_token()
    with pytest.raises(SessionExpired):
        await broker.create_session(token, "wrong-secret")


async def test_unreachable_kite_is_outcome_unknown(clock: ManualClock) -> None:
    with FakeKite() as gone:
        pass  # started and stopped: its port now refuses connections
    broker = make_broker(gone, clock)
    with pytest.raises(OutcomeUnknown):
        await broker.orders()


# -- the mapping itself, on the SDK's own exception classes ----------------------------------


def sdk() -> object:
    import kiteconnect.exceptions as ex

    return ex


def test_server_only_margin_and_holding_errors_map_by_message() -> None:
    ex = sdk()
    margin = ex.GeneralException(  # type: ignore[attr-defined]
        "Insufficient funds. Required margin is 95417.84 but available margin is 74251.80.",
        code=400,
    )
    assert isinstance(map_error(margin, "place order"), InsufficientFunds)
    holding = ex.GeneralException(  # type: ignore[attr-defined]
        "Insufficient holdings to sell 10 SBIN.", code=400
    )
    assert isinstance(map_error(holding, "place order"), InsufficientHoldings)


def test_permission_and_data_exceptions() -> None:
    ex = sdk()
    denied = map_error(ex.PermissionException("No IPs configured", 403), "quote")  # type: ignore[attr-defined]
    assert isinstance(denied, PermissionDenied) and "No IPs configured" in str(denied)
    bad = map_error(ex.DataException("Couldn't parse the JSON response", 502), "quote")  # type: ignore[attr-defined]
    assert isinstance(bad, DataError) and not outcome_unknown(bad)


def test_transport_errors_are_outcome_unknown() -> None:
    for exc in (
        requests.exceptions.ReadTimeout("x"),
        requests.exceptions.ConnectionError("x"),
        TimeoutError(),
    ):
        error = map_error(exc, "place order")
        assert isinstance(error, OutcomeUnknown) and outcome_unknown(error)
        assert "may or may not" in str(error)


def test_generic_5xx_and_unknown_errors() -> None:
    ex = sdk()
    assert isinstance(map_error(ex.GeneralException("boom", 502), "x"), BrokerUnavailable)  # type: ignore[attr-defined]
    plain = map_error(ValueError("odd"), "read quotes")
    assert type(plain) is BrokerError and "read quotes" in str(plain)


def test_adapter_modules_do_not_import_the_sdk_at_import_time() -> None:
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import services.brokers.kite.execution, services.brokers.kite.feed\n"
        "import services.brokers.kite.mapping, services.brokers.kite.ticker_decode\n"
        "print(sorted(m for m in ('kiteconnect', 'twisted', 'requests') if m in sys.modules))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
