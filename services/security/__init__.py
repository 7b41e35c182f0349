"""Keys, unlock and lockout, broker credentials and the audit chain."""

from services.security.audit import AuditBreak, AuditLog
from services.security.credentials import CredentialStore
from services.security.errors import (
    InsecureKeyringError,
    KeyUnavailableError,
    LockedOutError,
    WrongKeyError,
)
from services.security.idle import IdleLock
from services.security.keyring_policy import check_backend, secure_keyring
from services.security.keys import (
    Argon2Params,
    CredentialFileKeySource,
    FileDescriptorKeySource,
    KeyringKeySource,
    KeySource,
    PassphraseKeySource,
    VaultHeader,
    derive_key,
)
from services.security.lockout import Lockout, backoff_seconds
from services.security.vault import Vault

__all__ = [
    "Argon2Params",
    "AuditBreak",
    "AuditLog",
    "CredentialFileKeySource",
    "CredentialStore",
    "FileDescriptorKeySource",
    "IdleLock",
    "InsecureKeyringError",
    "KeySource",
    "KeyUnavailableError",
    "KeyringKeySource",
    "LockedOutError",
    "Lockout",
    "PassphraseKeySource",
    "Vault",
    "VaultHeader",
    "WrongKeyError",
    "backoff_seconds",
    "check_backend",
    "derive_key",
    "secure_keyring",
]
