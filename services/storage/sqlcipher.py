"""A typed seam around the untyped ``sqlcipher3`` module.

SQLCipher is opened with a raw 256-bit key (``PRAGMA key = "x'<hex>'"``) so that no key
derivation runs at open (about 0.1 ms instead of ~100 ms with SQLCipher's own PBKDF2): the
slow KDF, when there is one, is Argon2id in services.security, run once per unlock.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, cast

from sqlcipher3 import dbapi2 as _sqlcipher  # type: ignore[import-untyped]

from services.storage.errors import StorageError, WrongKeyError

KEY_BYTES = 32
_HEX_KEY = re.compile(r"[0-9a-f]{64}")

DatabaseError: type[Exception] = cast(type[Exception], _sqlcipher.DatabaseError)
IntegrityError: type[Exception] = cast(type[Exception], _sqlcipher.IntegrityError)


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...

    @property
    def description(self) -> Sequence[Sequence[Any]] | None: ...

    @property
    def lastrowid(self) -> int | None: ...

    def fetchone(self) -> tuple[Any, ...] | None: ...

    def fetchall(self) -> list[tuple[Any, ...]]: ...

    def __iter__(self) -> Any: ...


class Connection(Protocol):
    def execute(self, sql: str, parameters: Sequence[Any] = ..., /) -> Cursor: ...

    def executemany(self, sql: str, parameters: Iterable[Sequence[Any]], /) -> Cursor: ...

    def executescript(self, script: str, /) -> Cursor: ...

    def close(self) -> None: ...


def connect_raw(path: Path, key: bytes) -> Connection:
    """Open ``path`` with ``key`` and prove the key right by reading the schema.

    SQLCipher accepts any key at ``PRAGMA key`` and fails at the first read, so the read is
    part of opening. The driver's exception is replaced (``from None``) to keep its text, and
    anything chained to it, out of logs.
    """
    if len(key) != KEY_BYTES:
        raise StorageError("a database key must be 32 bytes")
    hex_key = key.hex()
    if not _HEX_KEY.fullmatch(hex_key):  # pragma: no cover - bytes.hex() is always lowercase hex
        raise StorageError("malformed key")
    conn = cast(
        Connection,
        _sqlcipher.connect(str(path), isolation_level=None, check_same_thread=False),
    )
    try:
        # Quiet SQLCipher's own stderr logging ("hmac check failed ...") on a wrong key.
        conn.execute("PRAGMA cipher_log_level = NONE")
        # PRAGMA cannot take bound parameters; the value is our own validated hex.
        conn.execute(f"PRAGMA key = \"x'{hex_key}'\"")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except DatabaseError:
        conn.close()
        raise WrongKeyError() from None
    except Exception:
        conn.close()
        raise StorageError("could not open the database") from None
    return conn


def rekey(conn: Connection, new_key: bytes) -> None:
    """Re-encrypt every page under ``new_key`` (SQLCipher ``PRAGMA rekey``)."""
    if len(new_key) != KEY_BYTES:
        raise StorageError("a database key must be 32 bytes")
    conn.execute(f"PRAGMA rekey = \"x'{new_key.hex()}'\"")
