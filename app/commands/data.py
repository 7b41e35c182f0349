"""``dalal data export PATH`` and ``dalal data wipe``: the trader's data is theirs."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from app.commands.vault import EXPECTED_ERRORS, add_profile_args, guarded, key_source, unlock
from app.commands.vault import make_vault as _make_vault
from services.security import AuditLog
from services.security import audit as events
from services.storage.export import export_zip


def check_export_path(path: Path, *, force: bool) -> bool:
    """Refuse an unusable target before the profile is unlocked; False: the trader said no.

    An existing file is replaced only with ``--force`` or a "y" typed at the question.
    """
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"cannot write {path}: directory {parent} is not writable")
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a directory")
    if path.exists() and not force:
        if not sys.stdin.isatty():
            raise ValueError(f"{path} exists; use --force to replace it")
        answer = input(f"{path} exists. Replace it? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("not replaced; nothing written")
            return False
    return True


@guarded
def export(args: argparse.Namespace) -> int:
    if not check_export_path(args.path, force=args.force):
        return 1
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
    p.add_argument("--force", action="store_true", help="replace PATH if it exists")
    add_profile_args(p)
    p.set_defaults(func=export)
    p = sub.add_parser("wipe", help="delete the database, its keys, credentials and caches")
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    add_profile_args(p)
    p.set_defaults(func=wipe)
    from app.commands import history

    history.register(sub)
