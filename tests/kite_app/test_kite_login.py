"""The Kite login round trip: listener, browser redirect via the fake's /connect/login,
token exchange, keyring storage with expiry, and the checks on the redirect."""

from __future__ import annotations

import argparse
import asyncio
import socket
from datetime import datetime
from pathlib import Path

import pytest
import requests

from app.commands import login as login_cmd
from services.brokers.kite.config import KiteEndpoints
from services.brokers.kite.execution import KiteBroker
from services.brokers.kite.login import LoginFailed, login
from services.brokers.kite.session import SESSION, KiteSecrets, token_expiry
from services.clock import IST
from services.security import CredentialStore, Vault
from services.storage import ProfilePaths
from tests.fakes.kite_server import FakeKite
from tests.keyrings import MemoryKeyring
from tests.kite_app.conftest import kite_settings
from tests.storage.conftest import FAST_ARGON2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def follow(url: str) -> int:
    """A browser without a user: Kite's login page redirects straight back to us."""
    return requests.get(url, timeout=5).status_code


@pytest.fixture
def redirect(fake: FakeKite) -> str:
    url = f"http://127.0.0.1:{free_port()}/kite/callback"
    fake.redirect_url = url
    return url


def broker_for(fake: FakeKite) -> KiteBroker:
    return KiteBroker(
        fake.api_key,
        endpoints=KiteEndpoints(root=fake.base_url, login=f"{fake.base_url}/connect/login"),
    )


def test_token_expires_at_six_the_next_morning() -> None:
    assert token_expiry(datetime(2026, 11, 25, 9, 0, tzinfo=IST)) == datetime(
        2026, 11, 26, 6, 0, tzinfo=IST
    )
    assert token_expiry(datetime(2026, 11, 25, 5, 30, tzinfo=IST)) == datetime(
        2026, 11, 25, 6, 0, tzinfo=IST
    )


async def test_round_trip_returns_a_token_kite_accepts(fake: FakeKite, redirect: str) -> None:
    broker = broker_for(fake)
    opened: list[str] = []

    def opener(url: str) -> int:
        opened.append(url)
        return follow(url)

    token = await login(broker, fake.api_secret, redirect_url=redirect, open_browser=opener)
    assert token in fake.access_tokens
    assert "redirect_params=state%3D" in opened[0]
    assert (await broker.profile())["user_id"] == "AB1234"  # the broker now uses it
    # The listener is gone once the login is done.
    with pytest.raises(requests.ConnectionError):
        await asyncio.to_thread(requests.get, redirect, timeout=1)


async def test_redirect_without_our_state_is_refused(fake: FakeKite, redirect: str) -> None:
    forged = fake.issue_request_token()
    answers: list[int] = []

    def attacker_then_user(url: str) -> int:
        answers.append(
            requests.get(f"{redirect}?request_token={forged}&status=success", timeout=5).status_code
        )
        return follow(url)

    token = await login(
        broker_for(fake), fake.api_secret, redirect_url=redirect, open_browser=attacker_then_user
    )
    assert answers == [400]
    assert forged in fake.request_tokens  # never exchanged
    assert token in fake.access_tokens


async def test_cancelled_login_and_timeout_fail_cleanly(fake: FakeKite, redirect: str) -> None:
    def cancel(url: str) -> int:
        state = url.split("state%3D", 1)[1]
        return requests.get(f"{redirect}?status=cancelled&state={state}", timeout=5).status_code

    with pytest.raises(LoginFailed, match="did not succeed"):
        await login(broker_for(fake), fake.api_secret, redirect_url=redirect, open_browser=cancel)
    with pytest.raises(LoginFailed, match="no login"):
        await login(
            broker_for(fake),
            fake.api_secret,
            redirect_url=redirect,
            open_browser=lambda url: None,
            within=0.3,
        )


async def test_wrong_secret_is_a_login_failure(fake: FakeKite, redirect: str) -> None:
    with pytest.raises(LoginFailed, match="refused the login token"):
        await login(broker_for(fake), "not-the-secret", redirect_url=redirect, open_browser=follow)


def test_dalal_login_kite_stores_the_token_with_its_expiry(
    fake: FakeKite,
    redirect: str,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(kite_settings(fake, redirect_url=redirect).model_dump_json(), "utf-8")
    paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
    vault = Vault(paths, keyring_backend=memory_keyring, argon2=FAST_ARGON2)
    db = vault.unlock(vault.keyring_source())
    CredentialStore("test", db, memory_keyring).set(
        "kite", {"api_key": fake.api_key, "api_secret": fake.api_secret}
    )
    db.close()
    monkeypatch.setattr(login_cmd, "OPEN_BROWSER", follow)
    args = argparse.Namespace(
        profile="test",
        config=config,
        data_dir=tmp_path / "data",
        cache_dir=tmp_path / "cache",
        key_fd=None,
        key_credential=None,
        kdf_time_cost=1,
        redirect_url=None,
        timeout=20.0,
        force=False,
    )
    assert login_cmd.login_kite(args) == 0
    assert "logged in to Kite" in capsys.readouterr().out
    db = vault.unlock(vault.keyring_source())
    try:
        stored = KiteSecrets(CredentialStore("test", db, memory_keyring)).token()
        assert stored is not None and stored.access_token in fake.access_tokens
        assert stored.expires_at.hour == 6 and stored.expires_at > datetime.now(IST)
        # Nothing but names and dates in the database: the token is only in the keyring.
        assert stored.access_token not in str(db.query("SELECT * FROM credential_meta"))
    finally:
        db.close()
    assert login_cmd.login_kite(args) == 0  # still valid: no second login
    assert "already logged in" in capsys.readouterr().out
    assert fake.journal.count("POST", "/session/token") == 1
    assert any(u == f"broker:test:{SESSION}" for _, u in memory_keyring.store)
