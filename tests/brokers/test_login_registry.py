"""Every registered broker's login is reached the same way: ``registry.login_spec`` for the
command's options, ``registry.build(name, context).session`` for the flow, and one
``dalal login NAME`` command whose handler is the generic one."""

from __future__ import annotations

from datetime import datetime

import pytest

from app.cli import build_parser
from app.commands import login as login_cmd
from services.brokers import registry
from services.brokers.errors import CredentialsMissing
from services.brokers.live import interactive_login
from services.brokers.ports import InteractiveSession, LoginSpec
from services.bus import EventBus
from services.clock import IST, ManualClock
from tests.kite_app.conftest import MemorySecrets

NOON = datetime(2026, 11, 25, 12, 0, tzinfo=IST)
SESSION_BROKERS = registry.names(registry.Role.SESSION)


def dummy_credentials(name: str) -> MemorySecrets:
    fields = {"api_key": "k3y", "api_secret": "s3cret", "client_code": "A1", "pin": "1234"}
    return MemorySecrets({name: fields})


def test_the_live_brokers_are_all_session_brokers() -> None:
    assert set(SESSION_BROKERS) == {"kite", "breeze", "angelone", "upstox"}


@pytest.mark.parametrize("name", SESSION_BROKERS)
def test_each_session_is_reached_through_the_registry(name: str) -> None:
    spec = registry.login_spec(name)
    assert isinstance(spec, LoginSpec) and spec.help
    parts = registry.build(
        name, registry.BrokerContext(ManualClock(NOON), EventBus(), secrets=dummy_credentials(name))
    )
    session = parts.session
    assert isinstance(session, InteractiveSession)
    assert session.broker == name
    assert session.current(NOON) is None and not parts.logged_in
    session.forget()  # nothing stored: still no error


@pytest.mark.parametrize("name", SESSION_BROKERS)
def test_dalal_login_has_one_generic_command_per_broker(name: str) -> None:
    spec = registry.login_spec(name)
    argv = ["login", name, "--force"]
    for field in spec.fields:
        argv += [f"--{field.option}", "123456"]
    args = build_parser().parse_args(argv)
    assert args.func is login_cmd.login_broker and args.login_broker == name
    for field in spec.fields:
        assert getattr(args, field.option.replace("-", "_")) == "123456"
    if spec.browser:
        assert args.timeout == 300.0 and args.redirect_url is None


@pytest.mark.parametrize("name", SESSION_BROKERS)
async def test_a_login_without_credentials_says_which_command(name: str) -> None:
    """No broker opens a browser (or asks for a code) before its credentials are stored."""
    opened: list[str] = []
    asked: list[str] = []

    async def prompt(field: object) -> str:
        asked.append(str(field))
        return "123456"

    context = registry.BrokerContext(ManualClock(NOON), EventBus(), secrets=MemorySecrets())
    with pytest.raises(CredentialsMissing, match=f"dalal credentials set {name}"):
        session = registry.build(name, context).session
        await interactive_login(name, session, opened.append, within=5.0, prompt=prompt)
    assert opened == [] and asked == []
