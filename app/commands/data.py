"""``dalal data export PATH`` and ``dalal data wipe``: the trader's data is theirs."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from app.commands.vault import EXPECTED_ERRORS, add_profile_args, guarded, key_source, unlock
from app.commands.vault import make_vault as _make_vault
from services.security import AuditLog
from services.security import audit as events
from services.storage.export import export_zip


@guarded
def export(args: argparse.Namespace) -> int:
    vault, db = unlock(args)
    try:
        manifest = export_zip(db, args.path, vault.paths.profile)
        AuditLog(db).record(events.DATA_EXPORTED, "cli", {"path": str(args.path)})
    finally:
        db.close()
    total = sum(t["rows"] for t in manifest["tables"].values())
    print(f"exported {total} rows from {len(manifest['tables'])} tables to {args.path}")
    print("the export is NOT encrypted: keep it somewhere safe or delete it when done")
    return 0


@guarded
def wipe(args: argparse.Namespace) -> int:
    vault = _make_vault(args)
    if not args.yes:
        answer = input(
            f"This deletes profile {vault.paths.profile!r}: its database, keys, broker "
            "credentials, model artifacts and risk state. Type the profile name to confirm: "
        )
        if answer.strip() != vault.paths.profile:
            print("not confirmed; nothing removed")
            return 1
    db = None
    if vault.exists:
        try:
            db = vault.unlock(key_source(args, vault), actor="cli")
        except EXPECTED_ERRORS as exc:
            print(
                f"warning: could not open the database ({exc}); broker credential entries it "
                "lists cannot be found and stay in the keyring",
                file=sys.stderr,
            )
    removed = vault.wipe(db)
    if not removed:
        print("nothing to remove")
    for item in removed:
        print(f"removed {item}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "data", help="market history (fetch, candles, gaps); export or erase this profile's data"
    )
    sub = parser.add_subparsers(dest="data_command", required=True)
    p = sub.add_parser("export", help="write all data as CSV + JSON manifest in a zip")
    p.add_argument("path", type=Path)
    add_profile_args(p)
    p.set_defaults(func=export)
    p = sub.add_parser("wipe", help="delete the database, its keys, credentials and caches")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_profile_args(p)
    p.set_defaults(func=wipe)
    from app.commands import history

    history.register(sub)
