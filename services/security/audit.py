"""Append-only, hash-chained audit log of security and trading events.

Each row's hash is SHA-256(previous hash || canonical JSON of the row), and SQLite triggers
refuse UPDATE and DELETE. The triggers stop mistakes; the chain catches someone who holds the
key, drops the triggers and edits or removes a row in the middle. Cutting rows off the end
leaves a valid shorter chain: compare ``head()`` with a copy kept elsewhere to detect that.
Rows are written through the synchronous=FULL connection, like the order journal.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.storage.database import Database
from services.storage.repositories import AuditRow

GENESIS = "0" * 64

UNLOCK = "unlock"
UNLOCK_FAILED = "unlock_failed"
LOCKOUT = "lockout"
KEY_MODE_CHANGED = "key_mode_changed"
CREDENTIAL_SET = "credential_set"
CREDENTIAL_DELETED = "credential_deleted"
ORDER_PLACED = "order_placed"
ORDER_MODIFIED = "order_modified"
ORDER_CANCELLED = "order_cancelled"
RISK_REJECTED = "risk_rejected"
MODEL_PROMOTED = "model_promoted"
DATA_EXPORTED = "data_exported"

# Guard against a caller putting a secret into an event by accident.
_SECRET_NAMES = frozenset(
    {
        "password",
        "passphrase",
        "secret",
        "api_secret",
        "access_token",
        "request_token",
        "refresh_token",
        "totp",
        "totp_secret",
        "pin",
        "db_key",
    }
)


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def row_hash(prev_hash: str, seq: int, ts: str, kind: str, actor: str, details: Any) -> str:
    body = canonical_json({"seq": seq, "ts": ts, "kind": kind, "actor": actor, "details": details})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class AuditBreak:
    """The first row at which the chain does not check out."""

    seq: int
    reason: str

    def __str__(self) -> str:
        return f"audit log broken at row {self.seq}: {self.reason}"


def _check_details(details: dict[str, Any]) -> None:
    for name in details:
        if name.lower() in _SECRET_NAMES:
            raise ValueError(f"audit details must not carry secrets (field {name!r})")


class AuditLog:
    def __init__(
        self, db: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self._db = db
        self._clock = clock

    def record(self, kind: str, actor: str, details: dict[str, Any] | None = None) -> AuditRow:
        if not kind:
            raise ValueError("audit kind is empty")
        details = dict(details or {})
        _check_details(details)
        normalised = json.loads(canonical_json(details))
        ts = self._clock().astimezone(UTC).isoformat()
        with self._db.journal_transaction() as c:
            last = self._db.audit.last(c)
            prev = last.hash if last else GENESIS
            seq = last.seq + 1 if last else 1
            digest = row_hash(prev, seq, ts, kind, actor, normalised)
            row = AuditRow(seq, ts, kind, actor, canonical_json(normalised), prev, digest)
            self._db.audit.append(c, row)
        return row

    def rows(self) -> list[AuditRow]:
        return self._db.audit.rows()

    def head(self) -> tuple[int, str]:
        rows = self._db.audit.rows()
        return (rows[-1].seq, rows[-1].hash) if rows else (0, GENESIS)

    def verify(self) -> AuditBreak | None:
        """Walk the chain; return the first broken row, or None when it is intact."""
        prev = GENESIS
        expected_seq = 1
        for row in self._db.audit.rows():
            if row.seq != expected_seq:
                return AuditBreak(expected_seq, f"row {expected_seq} is missing")
            if row.prev_hash != prev:
                return AuditBreak(row.seq, "previous-hash link does not match")
            try:
                details = json.loads(row.details)
            except ValueError:
                return AuditBreak(row.seq, "details are not valid JSON")
            if row_hash(prev, row.seq, row.ts, row.kind, row.actor, details) != row.hash:
                return AuditBreak(row.seq, "row content does not match its hash")
            prev = row.hash
            expected_seq += 1
        return None
