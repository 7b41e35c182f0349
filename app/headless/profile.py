"""Unlocking the profile database unattended: the key comes on a descriptor or a credential."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.http.auth import KeyVerifier
from services.storage import Database

log = logging.getLogger("dalal.headless")

DEFAULT_CREDENTIAL = "dalal-db-key"  # LoadCredential= name in packaging/systemd


@dataclass
class ProfileStore:
    db: Database
    state_dir: Path
    keys: KeyVerifier
    close: Callable[[], None]


class NoDatabaseKey(Exception):
    """No key could be had for the profile database; the message says what to do."""


def open_profile_store(
    profile: str, *, key_fd: int | None = None, key_credential: str | None = None
) -> ProfileStore | None:
    """Unlock the profile database for the headless session, or return ``None``.

    Headless runs unattended, so the key is handed in: on a file descriptor (``--key-fd``), as
    a systemd credential (``LoadCredential=dalal-db-key`` in the unit; picked up by itself when
    ``$CREDENTIALS_DIRECTORY`` holds it), or from a keyring that is safe to use unattended
    (keyrings.cryptfile). With none of those the server still runs, on an in-memory session
    without the journal, API keys or the audit log, and says so.
    """
    from services.apikeys import ApiKeyStore, DatabaseConnection
    from services.security import (
        CredentialFileKeySource,
        FileDescriptorKeySource,
        InsecureKeyringError,
        KeySource,
        KeyUnavailableError,
        LockedOutError,
        Vault,
    )
    from services.storage import ProfilePaths, StorageError, WrongKeyError

    paths = ProfilePaths.for_profile(profile)
    vault = Vault(paths)
    credentials_dir = os.environ.get("CREDENTIALS_DIRECTORY")
    if (
        key_credential is None
        and credentials_dir
        and (Path(credentials_dir) / DEFAULT_CREDENTIAL).exists()
    ):
        key_credential = DEFAULT_CREDENTIAL
    source: KeySource
    if key_fd is not None:
        source = FileDescriptorKeySource(key_fd)
    elif key_credential is not None:
        source = CredentialFileKeySource(key_credential)
    else:
        source = vault.keyring_source()
    try:
        db = vault.unlock(source, actor="headless")
    except (WrongKeyError, LockedOutError, StorageError) as e:
        raise NoDatabaseKey(str(e)) from None
    except (KeyUnavailableError, InsecureKeyringError) as e:
        if key_fd is not None or key_credential is not None:
            raise NoDatabaseKey(str(e)) from None
        log.warning(
            "no database key (%s): running without the encrypted database: no order journal, "
            "no API keys, no audit log. Hand a key with --key-fd or a systemd credential.",
            e,
        )
        return None
    # Audit events of the server go through the recorder's journal thread (see ``serve``).
    return ProfileStore(db, paths.directory, ApiKeyStore(DatabaseConnection(db)), db.close)
