"""``dalal credentials set|list|delete BROKER``: values go to a trusted OS keyring, or into the
encrypted profile database when there is none; prompted without echo; ``list`` shows names
and dates only."""

from __future__ import annotations

import argparse

from app.commands.vault import add_profile_args, guarded, prompt_secret, unlock
from services.security import CredentialStore

DEFAULT_FIELDS = ("api_key", "api_secret")


@guarded
def set_credentials(args: argparse.Namespace) -> int:
    fields = args.field or list(DEFAULT_FIELDS)
    values = {name: prompt_secret(f"{args.broker} {name}: ") for name in fields}
    if any(not v for v in values.values()):
        raise ValueError("empty value: nothing stored")
    vault, db = unlock(args)
    try:
        store = CredentialStore(vault.paths.profile, db, actor="cli")
        store.set(args.broker, values)
        where = store.location
    finally:
        db.close()
    place = "the OS keyring" if where == "keyring" else "the encrypted profile database"
    print(f"stored {', '.join(sorted(values))} for {args.broker} in {place}")
    return 0


@guarded
def list_credentials(args: argparse.Namespace) -> int:
    vault, db = unlock(args)
    try:
        entries = CredentialStore(vault.paths.profile, db, actor="cli").list()
    finally:
        db.close()
    if not entries:
        print("no broker credentials stored")
    for meta in entries:
        print(f"{meta.broker}\t{', '.join(meta.field_names)}\tset {meta.set_at.isoformat()}")
    return 0


@guarded
def delete_credentials(args: argparse.Namespace) -> int:
    vault, db = unlock(args)
    try:
        removed = CredentialStore(vault.paths.profile, db, actor="cli").delete(args.broker)
    finally:
        db.close()
    print(f"deleted credentials for {args.broker}" if removed else f"none for {args.broker}")
    return 0 if removed else 1


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "credentials", help="broker credentials (OS keyring, or the encrypted profile)"
    )
    sub = parser.add_subparsers(dest="credentials_command", required=True)
    p = sub.add_parser("set", help="store a broker's credentials (prompts, no echo)")
    p.add_argument("broker")
    p.add_argument(
        "--field",
        action="append",
        help=f"credential field to prompt for (repeatable; default {', '.join(DEFAULT_FIELDS)})",
    )
    add_profile_args(p)
    p.set_defaults(func=set_credentials)
    p = sub.add_parser("list", help="show which brokers have credentials, never the values")
    add_profile_args(p)
    p.set_defaults(func=list_credentials)
    p = sub.add_parser("delete", help="remove a broker's credentials")
    p.add_argument("broker")
    add_profile_args(p)
    p.set_defaults(func=delete_credentials)
