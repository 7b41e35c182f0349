"""Unlocking the profile database unattended: the key comes on a descriptor or a credential."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from app.http.auth import KeyVerifier
from services.storage import Database

if TYPE_CHECKING:
    from services.security import KeySource, Vault

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
    without the journal, API keys or the audit log, and says so; but a profile whose
    database exists and cannot be opened (a passphrase profile with no passphrase given, a
    keyring profile without its keyring) refuses to start.
    """
    from services.apikeys import ApiKeyStore, DatabaseConnection
    from services.security import (
        InsecureKeyringError,
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
    try:
        source = headless_key_source(vault, key_fd, key_credential)
    except KeyUnavailableError as e:
        raise NoDatabaseKey(str(e)) from None
    try:
        db = vault.unlock(source, actor="headless")
    except (WrongKeyError, LockedOutError, StorageError) as e:
        raise NoDatabaseKey(str(e)) from None
    except (KeyUnavailableError, InsecureKeyringError) as e:
        if key_fd is not None or key_credential is not None or vault.exists:
            # A profile that exists but cannot be opened: serving without it would refuse
            # every API key. Refuse to start instead, and say how to hand the key.
            raise NoDatabaseKey(
                f"{e}; hand the key with --key-fd or a systemd credential, or run "
                "with --no-database for an in-memory session"
            ) from None
        log.warning(
            "no database key (%s): running without the encrypted database: no order journal, "
            "no API keys, no audit log. Hand a key with --key-fd or a systemd credential.",
            e,
        )
        return None
    # Audit events of the server go through the recorder's journal thread (see ``serve``).
    return ProfileStore(db, paths.directory, ApiKeyStore(DatabaseConnection(db)), db.close)


def headless_key_source(
    vault: Vault, key_fd: int | None, key_credential: str | None
) -> KeySource:
    """The key of an unattended start, by the profile's mode.

    A passphrase profile takes its passphrase on the descriptor or in the credential, or
    asks for it when standard input is a terminal; with none of those it cannot start.
    Other profiles take the raw key handed in, or a trusted keyring.
    """
    from services.security import (
        CredentialFileKeySource,
        FileDescriptorKeySource,
        KeyUnavailableError,
    )
    from services.security.keys import MODE_PASSPHRASE

    if key_fd is not None:
        from app.commands.vault import check_key_fd, read_handed_passphrase

        check_key_fd(key_fd)
        if vault.mode == MODE_PASSPHRASE:
            return vault.passphrase_source(lambda: read_handed_passphrase(key_fd))
        return FileDescriptorKeySource(key_fd)
    if key_credential is not None:
        if vault.mode == MODE_PASSPHRASE:
            credential = CredentialFileKeySource(key_credential)
            return vault.passphrase_source(credential.read_text)
        return CredentialFileKeySource(key_credential)
    if vault.mode == MODE_PASSPHRASE:
        if not sys.stdin.isatty():
            raise KeyUnavailableError(
                f"profile {vault.paths.profile!r} is passphrase-protected and standard input "
                "is not a terminal: type it in a terminal, or hand it with --key-fd or a "
                "systemd credential"
            )
        from app.commands.vault import prompt_secret

        return vault.passphrase_source(lambda: prompt_secret("Passphrase: "))
    return vault.keyring_source()
