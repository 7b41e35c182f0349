"""``dalal vault status|passphrase|keyring`` and the profile-unlocking helpers the other
storage commands share."""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Callable
from pathlib import Path

from services.security import (
    Argon2Params,
    CredentialFileKeySource,
    FileDescriptorKeySource,
    InsecureKeyringError,
    KeySource,
    KeyUnavailableError,
    LockedOutError,
    Vault,
    WrongKeyError,
)
from services.security.keys import MODE_PASSPHRASE
from services.storage import Database, ProfilePaths, StorageError

Handler = Callable[[argparse.Namespace], int]

# Failures a trader can act on: shown as one line, never as a traceback.
EXPECTED_ERRORS: tuple[type[Exception], ...] = (
    WrongKeyError,
    LockedOutError,
    KeyUnavailableError,
    InsecureKeyringError,
    StorageError,
    ValueError,
)


def add_profile_args(parser: argparse.ArgumentParser) -> None:
    # SUPPRESS: a --profile given before the subcommand (dalal --profile x vault ...) must win.
    parser.add_argument(
        "--profile", default=argparse.SUPPRESS, help="profile name (default: default)"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--cache-dir", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--key-fd", type=int, default=None, help="read the database key from this descriptor"
    )
    parser.add_argument(
        "--key-credential",
        default=None,
        metavar="NAME",
        help="read the database key from the systemd credential NAME",
    )
    parser.add_argument("--kdf-time-cost", type=int, default=3, help=argparse.SUPPRESS)


def make_vault(args: argparse.Namespace) -> Vault:
    paths = ProfilePaths.for_profile(
        getattr(args, "profile", None) or "default", args.data_dir, args.cache_dir
    )
    return Vault(paths, argon2=Argon2Params(time_cost=args.kdf_time_cost))


def key_source(args: argparse.Namespace, vault: Vault) -> KeySource:
    if args.key_fd is not None:
        return FileDescriptorKeySource(args.key_fd)
    if args.key_credential:
        return CredentialFileKeySource(args.key_credential)
    if vault.mode == MODE_PASSPHRASE:
        return vault.passphrase_source(lambda: getpass.getpass("Passphrase: "))
    return vault.keyring_source()


def unlock(args: argparse.Namespace) -> tuple[Vault, Database]:
    vault = make_vault(args)
    return vault, vault.unlock(key_source(args, vault), actor="cli")


def guarded(handler: Handler) -> Handler:
    """Turn the expected failures into a one-line message and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            return handler(args)
        except EXPECTED_ERRORS as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    run.__name__ = handler.__name__
    run.__doc__ = handler.__doc__
    return run


def ask_new_passphrase() -> str:
    first = getpass.getpass("New passphrase: ")
    if len(first) < 8:
        raise ValueError("a passphrase needs at least 8 characters")
    if getpass.getpass("Repeat passphrase: ") != first:
        raise ValueError("the passphrases do not match")
    return first


@guarded
def status(args: argparse.Namespace) -> int:
    vault = make_vault(args)
    print(f"profile:   {vault.paths.profile}")
    print(f"database:  {vault.paths.database} ({'exists' if vault.exists else 'not created'})")
    print(f"key mode:  {vault.mode}")
    print(f"failed unlocks in a row: {vault.lockout.failures}")
    wait = vault.lockout.retry_after()
    if wait:
        print(f"locked out for another {wait:.0f} s")
    return 0


@guarded
def passphrase(args: argparse.Namespace) -> int:
    vault, db = unlock(args)
    try:
        vault.switch_to_passphrase(db, ask_new_passphrase(), actor="cli")
    finally:
        db.close()
    print("the database is now encrypted with a key derived from your passphrase (Argon2id)")
    return 0


@guarded
def keyring_mode(args: argparse.Namespace) -> int:
    vault, db = unlock(args)
    try:
        vault.switch_to_keyring(db, actor="cli")
    finally:
        db.close()
    print("the database is now encrypted with a random key kept in the OS keyring")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("vault", help="database key mode and lockout status")
    sub = parser.add_subparsers(dest="vault_command", required=True)
    for name, func, text in (
        ("status", status, "show the key mode and lockout state"),
        ("passphrase", passphrase, "switch to a passphrase-derived key (Argon2id)"),
        ("keyring", keyring_mode, "switch to a random key kept in the OS keyring"),
    ):
        p = sub.add_parser(name, help=text)
        add_profile_args(p)
        p.set_defaults(func=func)
