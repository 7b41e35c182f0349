"""Encrypted local storage: one SQLCipher database per profile, its schema and repositories."""

from services.storage.database import EXPORT_TABLES, Database
from services.storage.errors import (
    DatabaseMissingError,
    SchemaTooNewError,
    StorageError,
    WrongKeyError,
)
from services.storage.journal import OrderJournal, TickWriter
from services.storage.migrations import CURRENT_VERSION
from services.storage.paths import ProfilePaths
from services.storage.repositories import AlertRecord, AuditRow, CredentialMeta

__all__ = [
    "CURRENT_VERSION",
    "EXPORT_TABLES",
    "AlertRecord",
    "AuditRow",
    "CredentialMeta",
    "Database",
    "DatabaseMissingError",
    "OrderJournal",
    "ProfilePaths",
    "SchemaTooNewError",
    "StorageError",
    "TickWriter",
    "WrongKeyError",
]
