"""Errors the storage layer raises.

Every message here is safe to show to the trader: none carries key material or the text of
an SQLCipher exception (which could echo a statement such as ``PRAGMA key``).
"""

from __future__ import annotations


class StorageError(Exception):
    """Base class for storage failures."""


class WrongKeyError(StorageError):
    """The database exists but the key or passphrase does not open it."""

    def __init__(self, message: str = "wrong passphrase or key") -> None:
        super().__init__(message)


class DatabaseMissingError(StorageError):
    """Asked to open an existing database that is not there (never silently create one)."""


class SchemaTooNewError(StorageError):
    """The file was written by a newer version of the terminal; opening it could corrupt it."""

    def __init__(self, found: int, known: int) -> None:
        super().__init__(
            f"database schema version {found} is newer than this version of Dalal Terminal "
            f"understands ({known}); upgrade the terminal to open it"
        )
        self.found = found
        self.known = known


class AuditLogTampered(StorageError):
    """Raised by writers when the audit chain's head cannot be read consistently."""
