"""Unlocking a profile: key source, lockout, audit, key-mode switches and wipe.

Order of an unlock: refuse while locked out; get the key; open the existing file (a missing
file is only created when no file exists, a wrong key is ``WrongKeyError`` and counts as a
failure); on success clear the failure count and write the failed attempts, any lockout and
the unlock itself to the audit log (they could not be written while the database was locked).
"""

from __future__ import annotations

import logging
import secrets
import shutil
import time
from collections.abc import Callable

from keyring.backend import KeyringBackend

from services.security import audit as events
from services.security.audit import AuditLog
from services.security.credentials import credential_username
from services.security.errors import WrongKeyError
from services.security.keyring_policy import SERVICE, secure_keyring
from services.security.keys import (
    MODE_KEYRING,
    MODE_PASSPHRASE,
    Argon2Params,
    KeyringKeySource,
    KeySource,
    PassphraseKeySource,
    VaultHeader,
    keyring_username,
    model_signing_username,
)
from services.security.lockout import THRESHOLD, Lockout
from services.storage.database import Database
from services.storage.paths import ProfilePaths

log = logging.getLogger(__name__)

# Files other parts of the terminal keep beside the database: the risk engine's trading state
# (app.wiring) and the signed model artifacts (app.models_runtime).
RISK_STATE = "risk_state.json"
MODELS_DIRECTORY = "models"


class Vault:
    def __init__(
        self,
        paths: ProfilePaths,
        *,
        keyring_backend: KeyringBackend | None = None,
        clock: Callable[[], float] = time.time,
        argon2: Argon2Params | None = None,
    ) -> None:
        self.paths = paths
        self._backend = keyring_backend
        self.lockout = Lockout(paths.lockout, clock)
        self.argon2 = argon2 or Argon2Params()

    @property
    def exists(self) -> bool:
        return self.paths.database.exists()

    @property
    def mode(self) -> str:
        header = VaultHeader.load(self.paths.header)
        return header.mode if header else MODE_KEYRING

    def keyring_source(self) -> KeyringKeySource:
        return KeyringKeySource(self._backend)

    def passphrase_source(self, passphrase: str | Callable[[], str]) -> PassphraseKeySource:
        return PassphraseKeySource(passphrase, self.argon2)

    def unlock(self, source: KeySource, actor: str = "local") -> Database:
        self.lockout.check()
        create = not self.exists
        key = source.key(self.paths, create=create)
        try:
            db = Database.open(self.paths.database, key, create=create)
        except WrongKeyError:
            failures = self.lockout.record_failure()
            log.warning("unlock failed for profile %s (%d in a row)", self.paths.profile, failures)
            raise
        failures, first, last = self.lockout.record_success()
        audit = AuditLog(db)
        if failures:
            audit.record(
                events.UNLOCK_FAILED,
                actor,
                {"count": failures, "first_at": first, "last_at": last},
            )
        if failures >= THRESHOLD:
            audit.record(events.LOCKOUT, actor, {"failures": failures})
        audit.record(events.UNLOCK, actor, {"mode": source.mode, "created": create})
        log.info("profile %s unlocked", self.paths.profile)
        return db

    def switch_to_passphrase(self, db: Database, passphrase: str, actor: str = "local") -> None:
        """Re-encrypt under an Argon2id key and drop the keyring copy of the old key."""
        previous = self.mode
        source = self.passphrase_source(passphrase)
        header = source.new_header()
        key = source.key_for(header)
        # Header first: if we stop between here and the rekey, the old key still opens the
        # file (it stays in the keyring until the rekey has succeeded).
        header.save(self.paths.header)
        db.rekey(key)
        if previous == MODE_KEYRING:
            try:
                self.keyring_source().delete(self.paths)
            except Exception:  # the file is already re-keyed; a stale entry is harmless
                log.warning("could not delete the old key from the keyring")
        AuditLog(db).record(
            events.KEY_MODE_CHANGED, actor, {"from": previous, "to": MODE_PASSPHRASE}
        )

    def switch_to_keyring(self, db: Database, actor: str = "local") -> None:
        """Re-encrypt under a fresh random key kept in the (secure) keyring."""
        previous = self.mode
        source = self.keyring_source()
        key = secrets.token_bytes(32)
        source.store(self.paths, key)
        db.rekey(key)
        VaultHeader(MODE_KEYRING).save(self.paths.header)
        AuditLog(db).record(events.KEY_MODE_CHANGED, actor, {"from": previous, "to": "keyring"})

    def wipe(self, db: Database | None = None) -> list[str]:
        """Delete everything this profile left on the machine; return what was removed.

        Pass the unlocked ``db`` to also remove the broker credentials it lists (their
        names live in the database). The database key and the model-signing key are found by
        profile name, so they go with or without ``db``.
        """
        removed: list[str] = []
        brokers = [m.broker for m in db.credential_meta.all()] if db is not None else []
        if db is not None:
            db.close()
        try:
            backend = secure_keyring(self._backend)
        except Exception:
            backend = None
        if backend is not None:
            profile = self.paths.profile
            usernames = [credential_username(profile, broker) for broker in brokers]
            usernames += [keyring_username(profile), model_signing_username(profile)]
            for username in usernames:
                if backend.get_password(SERVICE, username) is not None:
                    backend.delete_password(SERVICE, username)
                    removed.append(f"keyring entry {SERVICE}/{username}")
        for path in (
            self.paths.database,
            self.paths.wal,
            self.paths.shm,
            self.paths.lockout,
            self.paths.header,
            self.paths.directory / RISK_STATE,
            self.paths.directory / (RISK_STATE + ".tmp"),
        ):
            if path.exists():
                path.unlink()
                removed.append(str(path))
        for directory in (
            self.paths.directory / MODELS_DIRECTORY,
            self.paths.cache_directory,
            self.paths.directory,
        ):
            if directory.exists():
                shutil.rmtree(directory)
                removed.append(str(directory) + "/")
        return removed
