"""`dalal login kite` on a machine with no OS keyring: the passphrase profile's vault keeps
the API secret and the day's token (keyring's ``fail`` backend, the suite's default)."""

from __future__ import annotations

import argparse
import getpass
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app.commands import login as login_cmd
from services.brokers.kite.session import KiteSecrets
from services.security import CredentialStore, Vault
from services.security.secret_store import VAULT
from services.storage import ProfilePaths
from tests.fakes.kite_server import FakeKite
from tests.kite_app.conftest import kite_settings
from tests.kite_app.test_kite_login import follow, redirect  # noqa: F401  (fixture)
from tests.storage.conftest import FAST_ARGON2

PASSPHRASE = "a laptop passphrase"


def test_login_kite_without_a_keyring_keeps_the_token_in_the_vault(
    fake: FakeKite,
    redirect: str,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(keyring, "get_keyring", fail.Keyring)
    config = tmp_path / "settings.json"
    config.write_text(kite_settings(fake, redirect_url=redirect).model_dump_json(), "utf-8")
    paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
    vault = Vault(paths, argon2=FAST_ARGON2)
    db = vault.unlock(vault.passphrase_source(PASSPHRASE))  # a new passphrase profile
    store = CredentialStore("test", db)
    assert store.location == VAULT
    store.set("kite", {"api_key": fake.api_key, "api_secret": fake.api_secret})
    db.close()

    monkeypatch.setattr(login_cmd, "OPEN_BROWSER", follow)
    monkeypatch.setattr(getpass, "getpass", lambda prompt="": PASSPHRASE)
    args = argparse.Namespace(
        profile="test", config=config, data_dir=tmp_path / "data", cache_dir=tmp_path / "cache",
        key_fd=None, key_credential=None, kdf_time_cost=1, redirect_url=None, timeout=20.0,
        force=False,
    )
    assert login_cmd.login_kite(args) == 0
    assert "logged in to Kite" in capsys.readouterr().out
    db = vault.unlock(vault.passphrase_source(PASSPHRASE))
    try:
        stored = KiteSecrets(CredentialStore("test", db)).token()
        assert stored is not None and stored.access_token in fake.access_tokens
    finally:
        db.close()
    assert stored.access_token.encode() not in paths.database.read_bytes()
