"""``dalal audit verify|show``: check the hash chain, list recent events."""

from __future__ import annotations

import argparse

from app.commands.vault import add_profile_args, guarded, unlock
from services.security import AuditLog


@guarded
def verify(args: argparse.Namespace) -> int:
    _, db = unlock(args)
    try:
        log = AuditLog(db)
        broken = log.verify()
        seq, head = log.head()
    finally:
        db.close()
    if broken is not None:
        print(f"TAMPERED: {broken}")
        return 1
    print(f"audit log intact: {seq} rows, head {head}")
    return 0


@guarded
def show(args: argparse.Namespace) -> int:
    _, db = unlock(args)
    try:
        rows = AuditLog(db).rows()
    finally:
        db.close()
    for row in rows[-args.limit :]:
        print(f"{row.seq}\t{row.ts}\t{row.kind}\t{row.actor}\t{row.details}")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("audit", help="the tamper-evident audit log")
    sub = parser.add_subparsers(dest="audit_command", required=True)
    p = sub.add_parser("verify", help="check the hash chain; exit 1 if a row was altered")
    add_profile_args(p)
    p.set_defaults(func=verify)
    p = sub.add_parser("show", help="print the most recent events")
    p.add_argument("--limit", type=int, default=50)
    add_profile_args(p)
    p.set_defaults(func=show)
