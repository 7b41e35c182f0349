"""API keys kept in SQL: name, scopes, hash of the secret, expiry, revocation, last use.

The store works on any DB-API 2 connection using ``?`` parameters (sqlite3 in tests, the
profile's SQLCipher connection in the terminal). The schema is created with ``IF NOT EXISTS``
so the store can run before a numbered migration adopts the table.

Verification answers from a short-lived cache so that an authenticated request costs no query
on the event loop most of the time; the cache lives ``cache_seconds`` (1 s by default), so a
key revoked from another process (``dalal apikey revoke``) stops working within that time.
Last-use times are kept in memory and written by ``flush_last_used`` (the server calls it
every half minute), not once per request.
"""

from __future__ import annotations

import contextlib
import enum
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from services.apikeys.tokens import (
    Scope,
    Token,
    hash_secret,
    new_token,
    parse_token,
    secret_matches,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS api_keys (
    key_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    secret_sha256 TEXT NOT NULL,
    scopes TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT
)
"""

MAX_NAME = 64


class Connection(Protocol):
    """The part of a DB-API 2 connection the store uses."""

    def execute(self, sql: str, params: Iterable[Any] = ..., /) -> Any: ...
    def commit(self) -> None: ...


class KeyState(enum.StrEnum):
    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


class Failure(enum.StrEnum):
    """Why a presented credential was refused; the client is told only that it was."""

    MISSING = "missing"
    MALFORMED = "malformed"
    UNKNOWN = "unknown"
    WRONG_SECRET = "wrong_secret"  # noqa: S105 (a reason, not a password)
    EXPIRED = "expired"
    REVOKED = "revoked"


class UnknownKeyError(KeyError):
    pass


@dataclass(frozen=True, slots=True)
class ApiKey:
    key_id: str
    name: str
    scopes: frozenset[Scope]
    created_at: datetime
    expires_at: datetime | None = None
    revoked_at: datetime | None = None
    last_used_at: datetime | None = None

    def state(self, now: datetime) -> KeyState:
        if self.revoked_at is not None:
            return KeyState.REVOKED
        if self.expires_at is not None and now >= self.expires_at:
            return KeyState.EXPIRED
        return KeyState.ACTIVE


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A new key and its token: the only time the token exists outside the client."""

    key: ApiKey
    token: Token


@dataclass(frozen=True, slots=True)
class Verdict:
    key: ApiKey | None
    failure: Failure | None
    key_id: str | None = None  # the id presented, when the token had one

    @property
    def ok(self) -> bool:
        return self.key is not None


def _ts(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _dt(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def _row_to_key(row: tuple[Any, ...]) -> tuple[ApiKey, str]:
    key_id, name, digest, scopes, created, expires, revoked, used = row
    key = ApiKey(
        key_id=key_id,
        name=name,
        scopes=frozenset(Scope(s) for s in scopes.split(",") if s),
        created_at=datetime.fromisoformat(created),
        expires_at=_dt(expires),
        revoked_at=_dt(revoked),
        last_used_at=_dt(used),
    )
    return key, digest


_COLUMNS = "key_id, name, secret_sha256, scopes, created_at, expires_at, revoked_at, last_used_at"


class ApiKeyStore:
    def __init__(
        self,
        conn: Connection,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        cache_seconds: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._conn = conn
        self._clock = clock
        self._cache_seconds = cache_seconds
        self._monotonic = monotonic
        self._cache: dict[str, tuple[float, tuple[ApiKey, str] | None]] = {}
        self._used: dict[str, datetime] = {}
        self.ensure_schema()

    def ensure_schema(self) -> None:
        self._conn.execute(SCHEMA)
        self._conn.commit()

    # -- administration ------------------------------------------------------------------
    def create(
        self, name: str, scopes: Iterable[Scope], expires_in: timedelta | None = None
    ) -> IssuedKey:
        name = name.strip()
        if not name or len(name) > MAX_NAME:
            raise ValueError(f"a key name needs 1 to {MAX_NAME} characters")
        scope_set = frozenset(scopes)
        if not scope_set:
            raise ValueError("a key needs at least one scope")
        if expires_in is not None and expires_in <= timedelta(0):
            raise ValueError("expiry must be in the future")
        now = self._clock()
        token = new_token()
        key = ApiKey(
            key_id=token.key_id,
            name=name,
            scopes=scope_set,
            created_at=now,
            expires_at=None if expires_in is None else now + expires_in,
        )
        self._conn.execute(
            f"INSERT INTO api_keys ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",  # noqa: S608
            (
                key.key_id,
                key.name,
                hash_secret(token.secret),
                ",".join(sorted(scope_set)),
                _ts(now),
                _ts(key.expires_at),
                None,
                None,
            ),
        )
        self._conn.commit()
        return IssuedKey(key, token)

    def list(self) -> list[ApiKey]:
        rows = self._conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_at, key_id"  # noqa: S608
        ).fetchall()
        keys = [_row_to_key(tuple(r))[0] for r in rows]
        return [self._with_pending_use(k) for k in keys]

    def get(self, key_id: str) -> ApiKey | None:
        found = self._load(key_id)
        return None if found is None else self._with_pending_use(found[0])

    def revoke(self, key_id: str) -> ApiKey:
        """Revoke ``key_id`` (idempotent: an already revoked key keeps its first time)."""
        found = self._load(key_id)
        if found is None:
            raise UnknownKeyError(key_id)
        if found[0].revoked_at is None:
            self._conn.execute(
                "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?",
                (_ts(self._clock()), key_id),
            )
            self._conn.commit()
        self._cache.pop(key_id, None)
        key = self.get(key_id)
        assert key is not None
        return key

    # -- authentication ------------------------------------------------------------------
    def verify(self, presented: str | None) -> Verdict:
        """Check a presented token; on success remember the use for ``flush_last_used``."""
        if not presented:
            return Verdict(None, Failure.MISSING)
        token = parse_token(presented)
        if token is None:
            return Verdict(None, Failure.MALFORMED)
        found = self._cached(token.key_id)
        if found is None:
            return Verdict(None, Failure.UNKNOWN, token.key_id)
        key, digest = found
        if not secret_matches(token.secret, digest):
            return Verdict(None, Failure.WRONG_SECRET, token.key_id)
        now = self._clock()
        state = key.state(now)
        if state is KeyState.REVOKED:
            return Verdict(None, Failure.REVOKED, token.key_id)
        if state is KeyState.EXPIRED:
            return Verdict(None, Failure.EXPIRED, token.key_id)
        self._used[key.key_id] = now
        return Verdict(key, None, token.key_id)

    def flush_last_used(self) -> int:
        """Write the remembered last-use times; return how many keys were updated."""
        pending, self._used = self._used, {}
        for key_id, when in pending.items():
            self._conn.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (_ts(when), key_id)
            )
        if pending:
            self._conn.commit()
        return len(pending)

    # -- internals -----------------------------------------------------------------------
    def _load(self, key_id: str) -> tuple[ApiKey, str] | None:
        row = self._conn.execute(
            f"SELECT {_COLUMNS} FROM api_keys WHERE key_id = ?", (key_id,)  # noqa: S608
        ).fetchone()
        return None if row is None else _row_to_key(tuple(row))

    def _cached(self, key_id: str) -> tuple[ApiKey, str] | None:
        now = self._monotonic()
        hit = self._cache.get(key_id)
        if hit is not None and now - hit[0] < self._cache_seconds:
            return hit[1]
        found = self._load(key_id)
        if len(self._cache) > 1024:  # unknown ids are cached too: bound what a scan can fill
            self._cache.clear()
        self._cache[key_id] = (now, found)
        return found

    def _with_pending_use(self, key: ApiKey) -> ApiKey:
        used = self._used.get(key.key_id)
        if used is None:
            return key
        return ApiKey(
            key.key_id, key.name, key.scopes, key.created_at, key.expires_at, key.revoked_at, used
        )


def parse_duration(text: str) -> timedelta:
    """Parse ``30d``, ``12h``, ``90m`` or ``2w`` into a duration."""
    text = text.strip().lower()
    units = {"m": timedelta(minutes=1), "h": timedelta(hours=1), "d": timedelta(days=1),
             "w": timedelta(weeks=1)}  # fmt: skip
    if len(text) < 2 or text[-1] not in units or not text[:-1].isdigit() or int(text[:-1]) <= 0:
        raise ValueError(f"expiry {text!r}: use a positive number with m, h, d or w (e.g. 30d)")
    return int(text[:-1]) * units[text[-1]]


__all__ = [
    "ApiKey",
    "ApiKeyStore",
    "DatabaseConnection",
    "Failure",
    "IssuedKey",
    "KeyState",
    "UnknownKeyError",
    "Verdict",
    "parse_duration",
    "parse_token",
]


class _Rows(list[tuple[Any, ...]]):
    def fetchall(self) -> list[tuple[Any, ...]]:
        return list(self)

    def fetchone(self) -> tuple[Any, ...] | None:
        return self[0] if self else None


class ProfileDatabase(Protocol):
    """The part of ``services.storage.Database`` the adapter needs."""

    def query(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]: ...
    def transaction(self) -> contextlib.AbstractContextManager[Any]: ...


class DatabaseConnection:
    """Lets ``ApiKeyStore`` run on the profile's SQLCipher ``Database``.

    Reads go through ``Database.query``, each write through its own ``transaction`` (so
    ``commit`` has nothing left to do): the database keeps its own lock and connection.
    """

    def __init__(self, db: ProfileDatabase) -> None:
        self._db = db

    def execute(self, sql: str, params: Iterable[Any] = (), /) -> _Rows:
        if sql.lstrip().upper().startswith("SELECT"):
            return _Rows(self._db.query(sql, tuple(params)))
        with self._db.transaction() as conn:
            conn.execute(sql, tuple(params))
        return _Rows()

    def commit(self) -> None:
        return None
