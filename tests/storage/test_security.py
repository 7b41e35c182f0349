from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from keyring.backends import chainer, fail

from services.security import (
    Argon2Params,
    AuditLog,
    CredentialFileKeySource,
    CredentialStore,
    FileDescriptorKeySource,
    IdleLock,
    InsecureKeyringError,
    KeyUnavailableError,
    LockedOutError,
    Vault,
    WrongKeyError,
    backoff_seconds,
    check_backend,
)
from services.security.keyring_policy import SERVICE
from services.storage import ProfilePaths
from services.storage.sqlcipher import connect_raw
from tests.keyrings import MemoryKeyring
from tests.storage.conftest import FAST_ARGON2


class _Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def test_default_key_is_random_and_kept_in_the_keyring(
    vault: Vault, memory_keyring: MemoryKeyring
) -> None:
    db = vault.unlock(vault.keyring_source())
    db.settings.set("a", 1)
    db.close()
    stored = memory_keyring.store[(SERVICE, "db-key:test")]
    assert len(bytes.fromhex(stored)) == 32
    assert vault.mode == "keyring"
    with vault.unlock(vault.keyring_source()) as db:
        assert db.settings.get("a") == 1


def test_missing_keyring_entry_never_creates_a_new_database(
    vault: Vault, memory_keyring: MemoryKeyring
) -> None:
    vault.unlock(vault.keyring_source()).close()
    before = vault.paths.database.read_bytes()
    memory_keyring.store.clear()
    with pytest.raises(KeyUnavailableError):
        vault.unlock(vault.keyring_source())
    assert vault.paths.database.read_bytes() == before


def test_plaintext_and_fail_keyrings_are_refused() -> None:
    plaintext = type("PlaintextKeyring", (MemoryKeyring,), {"__module__": "keyrings.alt.file"})
    only_fail = type(
        "ChainerBackend",
        (chainer.ChainerBackend,),
        {"__module__": "keyring.backends.chainer", "backends": [fail.Keyring()]},
    )
    for backend in (plaintext(), fail.Keyring(), only_fail()):
        with pytest.raises(InsecureKeyringError, match=r"keyrings\.cryptfile") as info:
            check_backend(backend)
        assert "Secret Service" in str(info.value)
    assert check_backend(MemoryKeyring())


def test_passphrase_mode_rekeys_and_drops_the_keyring_key(
    vault: Vault, memory_keyring: MemoryKeyring
) -> None:
    db = vault.unlock(vault.keyring_source())
    db.settings.set("kept", True)
    old_key = bytes.fromhex(memory_keyring.store[(SERVICE, "db-key:test")])
    vault.switch_to_passphrase(db, "correct horse battery")
    db.close()
    assert vault.mode == "passphrase"
    assert (SERVICE, "db-key:test") not in memory_keyring.store
    header = json.loads(vault.paths.header.read_text())
    assert header["kdf"]["algorithm"] == "argon2id"
    assert header["kdf"]["memory_cost_kib"] >= 65536
    with pytest.raises(WrongKeyError):
        connect_raw(vault.paths.database, old_key)
    with pytest.raises(WrongKeyError, match="wrong passphrase or key"):
        vault.unlock(vault.passphrase_source("wrong horse"))
    with vault.unlock(vault.passphrase_source("correct horse battery")) as db:
        assert db.settings.get("kept") is True
        vault.switch_to_keyring(db)
    assert vault.mode == "keyring"
    with vault.unlock(vault.keyring_source()) as db:
        assert db.settings.get("kept") is True


def test_argon2_memory_floor() -> None:
    with pytest.raises(ValueError, match="64 MiB"):
        Argon2Params(memory_cost_kib=32 * 1024)


def test_lockout_backs_off_persists_across_restarts_and_resets(
    paths: ProfilePaths, memory_keyring: MemoryKeyring
) -> None:
    clock = _Clock()
    vault = Vault(paths, keyring_backend=memory_keyring, clock=clock, argon2=FAST_ARGON2)
    db = vault.unlock(vault.keyring_source())
    vault.switch_to_passphrase(db, "right passphrase")
    db.close()
    for _ in range(5):
        with pytest.raises(WrongKeyError):
            vault.unlock(vault.passphrase_source("nope"))
    assert [backoff_seconds(n) for n in (4, 5, 6, 7, 30)] == [0, 1, 2, 4, 900]
    # A restart (new Vault over the same files) does not reset the count.
    restarted = Vault(paths, keyring_backend=memory_keyring, clock=clock, argon2=FAST_ARGON2)
    with pytest.raises(LockedOutError) as info:
        restarted.unlock(restarted.passphrase_source("right passphrase"))
    assert info.value.retry_after == pytest.approx(1.0)
    clock.now += 1.0
    with pytest.raises(WrongKeyError):
        restarted.unlock(restarted.passphrase_source("nope"))  # sixth failure: 2 s now
    clock.now += 1.5
    with pytest.raises(LockedOutError):
        restarted.unlock(restarted.passphrase_source("right passphrase"))
    clock.now += 0.5
    db = restarted.unlock(restarted.passphrase_source("right passphrase"))
    assert restarted.lockout.failures == 0
    kinds = [r.kind for r in AuditLog(db).rows()]
    assert kinds[-3:] == ["unlock_failed", "lockout", "unlock"]
    assert json.loads(AuditLog(db).rows()[-3].details)["count"] == 6
    db.close()


def test_idle_lock() -> None:
    idle = IdleLock(last_activity=0.0)
    assert not idle.is_locked(299.0)
    idle.touch(200.0)
    assert not idle.is_locked(499.0)
    assert idle.is_locked(500.0)
    idle.touch(501.0)  # activity after locking does not unlock
    assert idle.is_locked(502.0)
    idle.unlocked(600.0)
    assert not idle.is_locked(601.0) and idle.seconds_left(700.0) == pytest.approx(200.0)


def test_key_handed_on_a_descriptor_or_as_a_systemd_credential(
    paths: ProfilePaths, memory_keyring: MemoryKeyring, tmp_path: Path
) -> None:
    key = os.urandom(32)
    vault = Vault(paths, keyring_backend=memory_keyring)
    read_fd, write_fd = os.pipe()
    os.write(write_fd, key.hex().encode() + b"\n")
    os.close(write_fd)
    with vault.unlock(FileDescriptorKeySource(read_fd)) as db:
        db.settings.set("k", "v")
    assert memory_keyring.store == {}  # a handed key is never copied to the keyring
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "dalal-db-key").write_bytes(key)
    with vault.unlock(CredentialFileKeySource(directory=creds)) as db:
        assert db.settings.get("k") == "v"
    (creds / "bad").write_text("short")
    with pytest.raises(KeyUnavailableError):
        vault.unlock(CredentialFileKeySource("bad", directory=creds))


def test_credentials_live_only_in_the_keyring(vault: Vault, memory_keyring: MemoryKeyring) -> None:
    db = vault.unlock(vault.keyring_source())
    store = CredentialStore("test", db, memory_keyring)
    store.set("Kite", {"api_key": "K-VALUE-123", "api_secret": "S-VALUE-456"})
    assert store.get("kite") == {"api_key": "K-VALUE-123", "api_secret": "S-VALUE-456"}
    (meta,) = store.list()
    assert meta.broker == "kite" and meta.field_names == ("api_key", "api_secret")
    dumped = repr([db.dump_table(t) for t in ("credential_meta", "audit_log", "settings")])
    assert "K-VALUE-123" not in dumped and "S-VALUE-456" not in dumped
    assert store.delete("kite")
    assert store.get("kite") is None and store.list() == []
    assert not any(k[1].startswith("broker:") for k in memory_keyring.store)
    db.close()


def test_audit_chain_detects_a_tampered_row(vault: Vault, memory_keyring: MemoryKeyring) -> None:
    db = vault.unlock(vault.keyring_source())
    log = AuditLog(db)
    for i in range(4):
        log.record("order_placed", "test", {"order_id": f"o{i}", "qty": i})
    assert log.verify() is None
    with pytest.raises(ValueError, match="secrets"):
        log.record("credential_set", "test", {"api_secret": "x"})
    db.close()
    key = bytes.fromhex(memory_keyring.store[(SERVICE, "db-key:test")])
    conn = connect_raw(vault.paths.database, key)
    conn.execute("DROP TRIGGER audit_log_no_update")
    conn.execute("UPDATE audit_log SET details = ? WHERE seq = 3", ('{"order_id":"o1","qty":99}',))
    conn.close()
    with vault.unlock(vault.keyring_source()) as db:
        broken = AuditLog(db).verify()
        assert broken is not None and broken.seq == 3
