"""Broker credentials: values in a trusted keyring or the vault, names and dates in the open.

The values go where ``ProfileSecrets`` puts them: a keyring on the allow-list when there is
one, else the vault table inside the encrypted profile database (never exported). ``list``
shows what is configured from ``credential_meta`` without touching a secret, and an export of
the database carries no credential.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

from keyring.backend import KeyringBackend

from services.security import audit as events
from services.security.audit import AuditLog
from services.security.secret_store import ProfileSecrets
from services.storage.database import Database
from services.storage.repositories import CredentialMeta


def credential_username(profile: str, broker: str) -> str:
    return f"broker:{profile}:{broker}"


def _check_broker(broker: str) -> str:
    if not broker or not broker.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"invalid broker name {broker!r}")
    return broker.lower()


class CredentialStore:
    def __init__(
        self,
        profile: str,
        db: Database,
        backend: KeyringBackend | None = None,
        actor: str = "cli",
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._profile = profile
        self._db = db
        self._secrets = ProfileSecrets(db, backend, clock=clock)
        self._audit = AuditLog(db)
        self._actor = actor
        self._clock = clock

    @property
    def location(self) -> str:
        """``"keyring"`` or ``"vault"``: where ``set`` puts the values."""
        return self._secrets.location

    def set(self, broker: str, fields: dict[str, str]) -> None:
        """Store the broker's fields where ``location`` says."""
        broker = _check_broker(broker)
        if not fields or any(not isinstance(v, str) for v in fields.values()):
            raise ValueError("credential fields must be a non-empty mapping of strings")
        where = self._secrets.set(credential_username(self._profile, broker), json.dumps(fields))
        self._db.credential_meta.set(broker, fields.keys(), self._clock())
        self._audit.record(
            events.CREDENTIAL_SET,
            self._actor,
            {"broker": broker, "fields": sorted(fields), "store": where},
        )

    def get(self, broker: str) -> dict[str, str] | None:
        """For the broker adapter only; never log or display the result."""
        raw = self._secrets.get(credential_username(self._profile, _check_broker(broker)))
        if raw is None:
            return None
        value: dict[str, str] = json.loads(raw)
        return value

    def list(self) -> list[CredentialMeta]:
        return self._db.credential_meta.all()

    def delete(self, broker: str) -> bool:
        broker = _check_broker(broker)
        username = credential_username(self._profile, broker)
        existed = self._secrets.delete(username)
        had_meta = self._db.credential_meta.delete(broker)
        if existed or had_meta:
            self._audit.record(events.CREDENTIAL_DELETED, self._actor, {"broker": broker})
        return existed or had_meta
