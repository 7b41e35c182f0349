"""The Breeze login: ICICI's page posts API_Session to the loopback listener (or it is
pasted), the SDK's customerdetails exchange gives the session key, kept until midnight IST."""

from __future__ import annotations

import argparse
import asyncio
import html
import re
import socket
from datetime import datetime
from pathlib import Path

import pytest
import requests

from app.commands import login as login_cmd
from app.settings import BreezeSettings, Settings
from services.brokers.breeze.session import (
    SESSION,
    BreezeSecrets,
    LoginFailed,
    capture_api_session,
    session_expiry,
)
from services.brokers.errors import SessionExpired
from services.clock import IST
from services.security import CredentialStore, Vault
from services.storage import ProfilePaths
from tests.brokers.breeze.conftest import Rig
from tests.fakes.breeze.server import FakeBreeze
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def browser(url: str) -> int:
    """A browser without a user: ICICI's page auto-submits its form; we submit it."""
    page = requests.get(url, timeout=5)
    page.raise_for_status()
    action = html.unescape(re.search(r"action='([^']+)'", page.text).group(1))  # type: ignore[union-attr]
    value = re.search(r"name='API_Session' value='([^']+)'", page.text).group(1)  # type: ignore[union-attr]
    return requests.post(action, data={"API_Session": value}, timeout=5).status_code


def test_the_session_ends_at_midnight_ist() -> None:
    assert session_expiry(datetime(2026, 11, 25, 9, 0, tzinfo=IST)) == datetime(
        2026, 11, 26, 0, 0, tzinfo=IST
    )


async def test_the_form_post_is_caught_and_exchanged(rig: Rig) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/breeze/callback"
    rig.fake.redirect_url = redirect
    session = rig.session()
    opened: list[str] = []

    def opener(url: str) -> None:  # called off the loop, like a real browser launch
        opened.append(url)
        browser(url)

    value = await capture_api_session(session.login_url(), redirect, open_browser=opener, within=10)
    assert "api_key=fake%2Bbreeze%3Dkey%251" in opened[0]  # + = % encoded, as ICICI needs
    token = await session.complete_login({"API_Session": value})
    assert token.access_token in rig.fake.session_keys
    assert token.extra["user_id"] == "FAKEUSER01"
    assert token.expires_at == datetime(2026, 11, 26, 0, 0, tzinfo=IST)
    assert session.current(rig.clock.now()) == token
    with pytest.raises(requests.ConnectionError):  # the listener is gone
        await asyncio.to_thread(requests.get, redirect, timeout=1)


async def test_refusals(rig: Rig) -> None:
    session = rig.session()
    with pytest.raises(SessionExpired, match="log in again"):
        await session.complete_login({"API_Session": "12345678"})  # not issued by ICICI
    with pytest.raises(LoginFailed, match="loopback"):
        await capture_api_session("x", "https://example.com/cb", open_browser=print, within=1)
    with pytest.raises(LoginFailed, match="within"):
        await capture_api_session(
            "x", f"http://127.0.0.1:{free_port()}/cb", open_browser=lambda u: None, within=0.2
        )
    assert BreezeSecrets(rig.secrets).token() is None


def test_dalal_login_breeze_stores_the_session_in_the_vault(
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with FakeBreeze() as fake:
        redirect = f"http://127.0.0.1:{free_port()}/breeze/callback"
        fake.redirect_url = redirect
        config = tmp_path / "settings.json"
        settings = Settings(breeze=BreezeSettings(base_url=fake.base_url, redirect_url=redirect))
        config.write_text(settings.model_dump_json(), "utf-8")
        paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
        vault = Vault(paths, keyring_backend=memory_keyring, argon2=FAST_ARGON2)
        db = vault.unlock(vault.keyring_source())
        CredentialStore("test", db, memory_keyring).set(
            "breeze", {"api_key": fake.api_key, "api_secret": fake.api_secret}
        )
        db.close()
        monkeypatch.setattr(login_cmd, "OPEN_BROWSER", browser)
        args = argparse.Namespace(
            login_broker="breeze",
            profile="test",
            config=config,
            data_dir=tmp_path / "data",
            cache_dir=tmp_path / "cache",
            key_fd=None,
            key_credential=None,
            kdf_time_cost=1,
            redirect_url=None,
            paste=False,
            session=None,
            timeout=20.0,
            force=False,
        )
        assert login_cmd.login_broker(args) == 0
        assert "logged in to ICICI Direct Breeze" in capsys.readouterr().out
        db = vault.unlock(vault.keyring_source())
        try:
            stored = BreezeSecrets(CredentialStore("test", db, memory_keyring)).token()
            assert stored is not None and stored.access_token in fake.session_keys
            assert stored.expires_at.hour == 0 and stored.expires_at > datetime.now(IST)
            assert stored.access_token not in str(db.query("SELECT * FROM credential_meta"))
        finally:
            db.close()
        assert login_cmd.login_broker(args) == 0
        assert "already logged in" in capsys.readouterr().out
        assert fake.journal.count("GET", "/customerdetails") == 1
        assert any(u == f"broker:test:{SESSION}" for _, u in memory_keyring.store)
        # A pasted session that ICICI refuses: one clear line, exit 1, no traceback.
        args.force, args.session = True, "99999999"
        assert login_cmd.login_broker(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
