"""``dalal login upstox``: the whole OAuth leg through the CLI, the SDK and the fake."""

from __future__ import annotations

import argparse
import socket
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path

import pytest

from app.commands import login as login_cmd
from app.settings import Settings, UpstoxSettings
from services.brokers.upstox.session import SESSION
from services.clock import IST
from services.security import CredentialStore, Vault
from services.storage import ProfilePaths
from tests.fakes.upstox import FakeUpstox
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def browser(url: str) -> None:
    """The trader: Upstox's dialog (the fake logs in at once), then its redirect."""
    try:
        urllib.request.build_opener(_NoRedirect).open(url, timeout=5)
    except urllib.error.HTTPError as exc:
        urllib.request.urlopen(exc.headers["Location"], timeout=5).read()


def test_dalal_login_upstox_stores_the_day_token_in_the_vault(
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    redirect = f"http://127.0.0.1:{free_port()}/cb/upstox"
    with FakeUpstox() as fake:
        config = tmp_path / "settings.json"
        settings = Settings(upstox=UpstoxSettings(base_url=fake.base_url, redirect_url=redirect))
        config.write_text(settings.model_dump_json(), "utf-8")
        paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
        vault = Vault(paths, keyring_backend=memory_keyring, argon2=FAST_ARGON2)
        db = vault.unlock(vault.keyring_source())
        CredentialStore("test", db, memory_keyring).set(
            "upstox", {"api_key": fake.client_id, "api_secret": fake.client_secret}
        )
        db.close()
        monkeypatch.setattr(login_cmd, "OPEN_BROWSER", browser)
        args = argparse.Namespace(
            login_broker="upstox",
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
        assert login_cmd.login_broker(args) == 0
        out = capsys.readouterr().out
        assert "logged in to Upstox" in out and "03:30 IST" in out
        db = vault.unlock(vault.keyring_source())
        try:
            stored = CredentialStore("test", db, memory_keyring).get(SESSION)
            assert stored is not None and stored["access_token"] in fake.access_tokens
            expires = datetime.fromisoformat(stored["expires_at"])
            assert expires.astimezone(IST).time().isoformat() == "03:30:00"
            assert stored["access_token"] not in str(db.query("SELECT * FROM credential_meta"))
        finally:
            db.close()
        assert login_cmd.login_broker(args) == 0
        assert "already logged in" in capsys.readouterr().out
        # Upstox refuses the app's secret: one clear line, exit 1, no traceback.
        fake.client_secret = "rotated"
        args.force = True
        assert login_cmd.login_broker(args) == 1
        err = capsys.readouterr().err
        assert err.startswith("error: ") and "Traceback" not in err and len(err.splitlines()) == 1
        assert "start the login again" in err
