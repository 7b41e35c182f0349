"""``dalal login angelone``: TOTP from the stored seed, the session into the credential store."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from app.commands import login as login_cmd
from services.brokers.angelone.session import CREDENTIALS, SESSION
from services.security import CredentialStore, Vault
from services.storage import ProfilePaths
from tests.brokers.angelone.test_check_connections import settings_for
from tests.fakes.angelone import FakeAngel
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2


def args_for(tmp_path: Path, config: Path, **kw: object) -> argparse.Namespace:
    base: dict[str, object] = {
        "login_broker": "angelone", "profile": "test", "config": config,
        "data_dir": tmp_path / "data", "cache_dir": tmp_path / "cache",
        "key_fd": None, "key_credential": None,
        "kdf_time_cost": 1, "totp": None, "force": False,
    }  # fmt: skip
    base.update(kw)
    return argparse.Namespace(**base)


def setup(fake: FakeAngel, tmp_path: Path, keyring: MemoryKeyring, *, seed: bool) -> Vault:
    paths = ProfilePaths.for_profile("test", tmp_path / "data", tmp_path / "cache")
    vault = Vault(paths, keyring_backend=keyring, argon2=FAST_ARGON2)
    db = vault.unlock(vault.keyring_source())
    fields = {"api_key": fake.api_key, "client_code": fake.client_code, "pin": fake.pin}
    if seed:
        fields["totp_secret"] = fake.totp_secret
    CredentialStore("test", db, keyring).set(CREDENTIALS, fields)
    db.close()
    return vault


def test_login_with_the_stored_seed_then_already_logged_in(
    fake: FakeAngel,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(settings_for(fake).model_dump_json(), "utf-8")
    vault = setup(fake, tmp_path, memory_keyring, seed=True)
    args = args_for(tmp_path, config)
    assert login_cmd.login_broker(args) == 0
    out = capsys.readouterr().out
    assert "logged in to Angel One" in out and "00:00 IST" in out
    db = vault.unlock(vault.keyring_source())
    try:
        stored = CredentialStore("test", db, memory_keyring).get(SESSION)
        assert stored is not None and stored["access_token"] in fake.jwts
        assert stored["access_token"] not in str(db.query("SELECT * FROM credential_meta"))
    finally:
        db.close()
    assert login_cmd.login_broker(args) == 0
    assert "already logged in" in capsys.readouterr().out
    assert fake.count("loginByPassword") == 1


def test_a_wrong_typed_code_is_one_line_and_exit_1(
    fake: FakeAngel,
    tmp_path: Path,
    memory_keyring: MemoryKeyring,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "settings.json"
    config.write_text(settings_for(fake).model_dump_json(), "utf-8")
    setup(fake, tmp_path, memory_keyring, seed=False)
    assert login_cmd.login_broker(args_for(tmp_path, config, totp="000000")) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "Invalid totp" in err and "\n" not in err
    assert login_cmd.login_broker(args_for(tmp_path, config, totp=fake.totp())) == 0
