"""``dalal apikey create|list|revoke``: keys for the headless control API.

The token is printed once, at creation, and never again: the database keeps only a SHA-256 of
its secret. Creating and revoking keys are audit events.
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from app.commands.vault import add_profile_args, guarded, unlock
from services.apikeys import ApiKeyStore, DatabaseConnection, parse_duration, parse_scopes
from services.apikeys.store import UnknownKeyError
from services.security import AuditLog


def _when(value: datetime | None) -> str:
    return "-" if value is None else value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


@guarded
def create(args: argparse.Namespace) -> int:
    scopes = parse_scopes(args.scopes)
    expires = None if args.expires in (None, "never") else parse_duration(args.expires)
    _, db = unlock(args)
    try:
        issued = ApiKeyStore(DatabaseConnection(db)).create(args.name, scopes, expires)
        AuditLog(db).record(
            "apikey.create",
            "cli",
            {"key_id": issued.key.key_id, "name": issued.key.name,
             "scopes": sorted(s.value for s in scopes), "expires_at": _when(issued.key.expires_at)},
        )  # fmt: skip
    finally:
        db.close()
    print(f"key id:   {issued.key.key_id}")
    print(f"scopes:   {','.join(sorted(s.value for s in issued.key.scopes))}")
    print(f"expires:  {_when(issued.key.expires_at)}")
    print("token (shown once, store it now; send it as 'Authorization: Bearer <token>'):")
    print(str(issued.token))
    return 0


@guarded
def list_keys(args: argparse.Namespace) -> int:
    _, db = unlock(args)
    try:
        keys = ApiKeyStore(DatabaseConnection(db)).list()
    finally:
        db.close()
    now = datetime.now(UTC)
    print("ID\tNAME\tSCOPES\tSTATE\tCREATED\tEXPIRES\tLAST USED")
    for k in keys:
        scopes = ",".join(sorted(s.value for s in k.scopes))
        print(f"{k.key_id}\t{k.name}\t{scopes}\t{k.state(now).value}\t{_when(k.created_at)}\t"
              f"{_when(k.expires_at)}\t{_when(k.last_used_at)}")  # fmt: skip
    return 0


@guarded
def revoke(args: argparse.Namespace) -> int:
    _, db = unlock(args)
    try:
        try:
            key = ApiKeyStore(DatabaseConnection(db)).revoke(args.key_id)
        except UnknownKeyError:
            raise ValueError(f"no API key with id {args.key_id!r}") from None
        AuditLog(db).record("apikey.revoke", "cli", {"key_id": key.key_id, "name": key.name})
    finally:
        db.close()
    print(f"revoked {key.key_id} ({key.name}) at {_when(key.revoked_at)}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("apikey", help="API keys for the headless control API")
    sub = parser.add_subparsers(dest="apikey_command", required=True)
    p = sub.add_parser("create", help="create a key and print its token once")
    p.add_argument("--name", required=True, help="what the key is for, e.g. prometheus")
    p.add_argument("--scopes", default="read", help="comma-separated: read, trade, models")
    p.add_argument("--expires", default="90d", help="lifetime such as 30d, 12h, 2w, or never")
    add_profile_args(p)
    p.set_defaults(func=create)
    p = sub.add_parser("list", help="list keys (never their tokens)")
    add_profile_args(p)
    p.set_defaults(func=list_keys)
    p = sub.add_parser("revoke", help="revoke a key by id; takes effect within a second")
    p.add_argument("key_id", metavar="ID")
    add_profile_args(p)
    p.set_defaults(func=revoke)
