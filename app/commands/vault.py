"""``dalal vault status|passphrase|keyring`` and the profile-unlocking helpers the other
storage commands share."""

from __future__ import annotations

import argparse
import contextlib
import getpass
import io
import os
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
    secure_keyring,
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


def _has_terminal() -> bool:
    try:
        fd = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except (OSError, AttributeError):
        return sys.stdin is not None and sys.stdin.isatty()
    os.close(fd)
    return True


def prompt_secret(prompt: str) -> str:
    """``getpass`` with its failures as one-line errors: no terminal, or stdin at its end.

    Without a terminal ``getpass`` reads a line of standard input (a script's pipe); its
    "input may be echoed" warnings are then noise on stderr and are kept out of it.
    """
    try:
        if _has_terminal():
            return getpass.getpass(prompt)
        with contextlib.redirect_stderr(io.StringIO()):
            return getpass.getpass(prompt)
    except EOFError:
        raise KeyUnavailableError(
            f"no answer to {prompt.strip().rstrip(':')!r}: standard input ended (no terminal?); "
            "run it in a terminal, or hand the key or passphrase with --key-fd"
        ) from None


def read_handed_passphrase(fd: int) -> str:
    """A passphrase-mode profile's passphrase, handed on a descriptor instead of typed."""
    try:
        with open(fd, "rb", closefd=True) as f:
            raw = f.read(4097)
    except OSError as e:
        raise KeyUnavailableError(f"cannot read --key-fd {fd}: {e.strerror or e}") from None
    if len(raw) > 4096:
        raise KeyUnavailableError("key descriptor carries too much data")
    text = raw.decode("utf-8", errors="strict").rstrip("\r\n")
    if not text:
        raise KeyUnavailableError(f"--key-fd {fd} carried no passphrase")
    return text


def check_key_fd(fd: int) -> None:
    """A descriptor that is not open is a usage error, found before any prompt or unlock."""
    try:
        os.fstat(fd)
    except OSError:
        raise KeyUnavailableError(
            f"--key-fd {fd} is not an open file descriptor (start the command as "
            f"`dalal ... --key-fd {fd} {fd}<keyfile`)"
        ) from None


def key_source(args: argparse.Namespace, vault: Vault) -> KeySource:
    """The handed key, the passphrase, or the keyring, by what the profile's header says.

    For a passphrase profile, ``--key-fd`` carries the passphrase (a headless start must not
    need a terminal); for every other profile it carries the raw key.
    """
    if args.key_fd is not None:
        check_key_fd(args.key_fd)
        if vault.mode == MODE_PASSPHRASE:
            fd = args.key_fd
            return vault.passphrase_source(lambda: read_handed_passphrase(fd))
        return FileDescriptorKeySource(args.key_fd)
    if args.key_credential:
        return CredentialFileKeySource(args.key_credential)
    if vault.mode == MODE_PASSPHRASE:
        return vault.passphrase_source(lambda: prompt_secret("Passphrase: "))
    if not vault.exists and not trusted_keyring_available():
        raise KeyUnavailableError(
            f"profile {vault.paths.profile!r} does not exist yet and there is no trusted OS "
            "keyring to keep its key: create it with a passphrase (`dalal vault passphrase`), "
            "or hand it a key with --key-fd"
        )
    return vault.keyring_source()


def trusted_keyring_available() -> bool:
    try:
        secure_keyring()
    except InsecureKeyringError:
        return False
    return True


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
    first = prompt_secret("New passphrase: ")
    if len(first) < 8:
        raise ValueError("a passphrase needs at least 8 characters")
    if prompt_secret("Repeat passphrase: ") != first:
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
    """Switch a profile to a passphrase, or create a new profile with one.

    Creating needs no keyring at all: this is the first step on a machine without one.
    """
    vault = make_vault(args)
    if not vault.exists and args.key_fd is None and not args.key_credential:
        chosen = ask_new_passphrase()
        vault.unlock(vault.passphrase_source(chosen), actor="cli").close()
        print(
            f"created profile {vault.paths.profile!r}, encrypted with a key derived from your "
            "passphrase (Argon2id); no OS keyring is needed"
        )
        return 0
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
