"""Where a profile's secrets live: a trusted OS keyring when there is one, else the vault.

Broker credentials and tokens and the model-signing key must work on a machine with no
encrypted keyring (many Linux laptops, WSL, every VPS). There they are kept in the profile's
own SQLCipher database, which is only open once the passphrase or the handed key has unlocked
it: the file alone is as useless as the keyring entry alone. When a keyring on the
allow-list (``keyring_policy``) exists it stays the place new secrets go, a convenience the
trader may already rely on; a secret written to the vault before the keyring appeared is
still found there. A keyring that is not trusted is never written to, whatever it is.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from keyring.backend import KeyringBackend

from services.security.errors import InsecureKeyringError
from services.security.keyring_policy import SERVICE, secure_keyring
from services.storage.database import Database

KEYRING = "keyring"
VAULT = "vault"


class ProfileSecrets:
    """One secret per name; values are strings (JSON or hex when they are structured)."""

    def __init__(
        self,
        db: Database,
        backend: KeyringBackend | None = None,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._db = db
        self._requested = backend
        self._clock = clock
        self._backend: KeyringBackend | None = None
        self._resolved = False

    @property
    def keyring(self) -> KeyringBackend | None:
        """The trusted keyring, or ``None`` when there is none (the vault is used then)."""
        if not self._resolved:
            try:
                self._backend = secure_keyring(self._requested)
            except InsecureKeyringError:
                self._backend = None
            self._resolved = True
        return self._backend

    @property
    def location(self) -> str:
        """Where ``set`` writes: ``"keyring"`` or ``"vault"``."""
        return KEYRING if self.keyring is not None else VAULT

    def get(self, name: str) -> str | None:
        backend = self.keyring
        if backend is not None:
            value = backend.get_password(SERVICE, name)
            if value is not None:
                return value
        return self._db.vault_secrets.get(name)

    def set(self, name: str, value: str) -> str:
        """Store ``value``; return where it went. Exactly one copy exists afterwards."""
        backend = self.keyring
        if backend is not None:
            backend.set_password(SERVICE, name, value)
            self._db.vault_secrets.delete(name)
            return KEYRING
        self._db.vault_secrets.set(name, value, self._clock())
        return VAULT

    def delete(self, name: str) -> bool:
        removed = False
        backend = self.keyring
        if backend is not None and backend.get_password(SERVICE, name) is not None:
            backend.delete_password(SERVICE, name)
            removed = True
        return self._db.vault_secrets.delete(name) or removed


__all__ = ["KEYRING", "VAULT", "ProfileSecrets"]
