"""A first run on a machine with no OS keyring (keyring's ``fail`` backend, the suite default).

A passphrase profile is created from the command line; broker credentials, the Kite token and
the model-signing key then live in the encrypted database (the vault table), and models train,
promote and load with nothing but the passphrase or the handed key.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyring.backends import fail

from app.cli import main
from services.security import CredentialStore, Vault
from services.security.keys import Argon2Params
from services.security.secret_store import VAULT, ProfileSecrets
from services.storage import ProfilePaths
from services.storage.database import EXPORT_TABLES

PASSPHRASE = "PASSPHRASE_MARKER_first_run"
SECRET = "KITE_SECRET_MARKER_0b1d"


@pytest.fixture
def no_keyring() -> Iterator[None]:
    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def dalal(tmp_path: Path, no_keyring: None) -> Callable[..., int]:
    base = ["--profile", "laptop", "--data-dir", str(tmp_path / "d"), "--cache-dir",
            str(tmp_path / "c"), "--kdf-time-cost", "1"]

    def call(*argv: str) -> int:
        return main([*argv, *base])

    return call


def prompts(monkeypatch: pytest.MonkeyPatch, *answers: str) -> None:
    queue = iter(answers)

    def answer(prompt: str = "") -> str:
        try:
            return next(queue)
        except StopIteration:
            raise EOFError from None

    monkeypatch.setattr(getpass, "getpass", answer)


def open_vault(tmp_path: Path) -> Vault:
    paths = ProfilePaths.for_profile("laptop", tmp_path / "d", tmp_path / "c")
    return Vault(paths, argon2=Argon2Params(time_cost=1))


def test_a_new_profile_without_a_keyring_says_how_to_create_one(
    dalal: Callable[..., int], capsys: pytest.CaptureFixture[str]
) -> None:
    assert dalal("credentials", "list") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dalal vault passphrase" in err and "Traceback" not in err


def test_credentials_and_models_live_in_the_vault_without_a_keyring(
    dalal: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    prompts(monkeypatch, PASSPHRASE, PASSPHRASE)
    assert dalal("vault", "passphrase") == 0
    assert "created profile 'laptop'" in capsys.readouterr().out

    prompts(monkeypatch, "api-key-1", SECRET, PASSPHRASE)
    assert dalal("credentials", "set", "kite") == 0
    assert "in the encrypted profile database" in capsys.readouterr().out
    prompts(monkeypatch, PASSPHRASE)
    assert dalal("credentials", "list") == 0
    assert capsys.readouterr().out.startswith("kite\tapi_key, api_secret")

    common = ["--symbol", "NSE:SYNTH", "--synthetic", "1200", "--train-size", "400",
              "--test-size", "200", "--splits", "2"]
    prompts(monkeypatch, PASSPHRASE)
    assert dalal("model", "train", "mom", *common) == 0
    prompts(monkeypatch, PASSPHRASE)
    assert dalal("model", "promote", "mom", "1", "production", "--force") == 0
    assert "mom v1 is now production" in capsys.readouterr().out

    vault = open_vault(tmp_path)
    db = vault.unlock(vault.passphrase_source(PASSPHRASE), actor="test")
    try:
        store = CredentialStore("laptop", db)
        assert store.location == VAULT
        assert store.get("kite") == {"api_key": "api-key-1", "api_secret": SECRET}
        assert ProfileSecrets(db).get("model-signing:laptop") is not None
        # The model loads: its artifact verifies against the key kept in the vault.
        from app.commands.model import signing_key
        from models.artifacts import ArtifactStore
        from models.registry import ModelRegistry
        from models.sqlstore import SqlRegistryStore

        registry = ModelRegistry(
            SqlRegistryStore(db.transaction),
            ArtifactStore(vault.paths.directory / "models",
                          signing_key("laptop", db, create=False)),
        )
        record = registry.production("mom")
        assert record is not None
        loaded = registry.load(record.model_id, record.version)
        assert hasattr(loaded.estimator, "predict_proba")
        # Secrets never leave in an export, and never sit in the file in clear.
        assert "vault_secrets" not in EXPORT_TABLES
    finally:
        db.close()
    raw = vault.paths.database.read_bytes()
    wal = vault.paths.wal.read_bytes() if vault.paths.wal.exists() else b""
    for marker in (SECRET, PASSPHRASE):
        assert marker.encode() not in raw + wal


def test_key_fd_of_a_passphrase_profile_carries_the_passphrase(
    dalal: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompts(monkeypatch, PASSPHRASE, PASSPHRASE)
    assert dalal("vault", "passphrase") == 0
    prompts(monkeypatch)  # any prompt now would be an EOF: the descriptor must be used
    read, write = os.pipe()
    os.write(write, (PASSPHRASE + "\n").encode())
    os.close(write)
    assert dalal("credentials", "list", "--key-fd", str(read)) == 0
    assert "no broker credentials stored" in capsys.readouterr().out


def test_eof_and_closed_descriptors_are_one_line_errors(
    dalal: Callable[..., int],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    prompts(monkeypatch)
    assert dalal("vault", "passphrase") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "standard input ended" in err
    read, write = os.pipe()
    os.close(read)
    os.close(write)
    assert dalal("credentials", "list", "--key-fd", str(read)) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not an open file descriptor" in err
