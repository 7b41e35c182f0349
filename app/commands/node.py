"""``dalal node pair|resume|kill``: the desktop's side of an order node.

``pair`` shows the node's TLS fingerprint (trust on first use: compare it with the one the node
printed when it started), stores the node's trade-scoped API key in this profile's credential
store and selects the node as the execution venue in the settings. ``resume`` and ``kill``
act on the running node: a HALTED node is resumed here, on the desktop, or through
``POST /v1/killswitch/resume``.
"""

from __future__ import annotations

import argparse
import asyncio
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from app.commands.vault import add_profile_args, guarded, prompt_secret, unlock

if TYPE_CHECKING:
    from services.brokers.node.execution import NodeExecution

KEY_ENV = "DALAL_NODE_KEY"  # the API key for scripts; never an argument (ps shows those)


def _settings_path(args: argparse.Namespace) -> Path | None:
    return getattr(args, "config", None)


def _node_key(args: argparse.Namespace) -> str:
    from services.brokers.node.config import NAME, SECRET_FIELD
    from services.security import CredentialStore

    key = os.environ.get(KEY_ENV)
    if key:
        return key
    vault, db = unlock(args)
    try:
        stored = CredentialStore(vault.paths.profile, db, actor="cli").get(NAME)
    finally:
        db.close()
    if not stored or not stored.get(SECRET_FIELD):
        raise ValueError(f"no API key for the node: run `dalal node pair URL` or set {KEY_ENV}")
    return stored[SECRET_FIELD]


@guarded
def pair(args: argparse.Namespace) -> int:
    from app.settings import load_settings, save_settings
    from services.brokers.node.config import NAME, SECRET_FIELD
    from services.brokers.node.pinning import fetch_fingerprint, normalise, pretty
    from services.security import CredentialStore

    url = args.url.rstrip("/")
    fingerprint = None
    if url.startswith("https://"):
        seen = asyncio.run(fetch_fingerprint(url))
        print(f"the node at {url} presents a certificate with SHA-256 fingerprint\n  "
              f"{pretty(seen)}")  # fmt: skip
        if args.fingerprint is not None:
            if normalise(args.fingerprint) != seen:
                raise ValueError("that is not the fingerprint you gave: not pinned (someone "
                                 "may be between you and the node)")  # fmt: skip
        elif input("Is it the one `dalal headless` printed on the node? [y/N] ").strip().lower() \
                not in ("y", "yes"):  # fmt: skip
            raise ValueError("not confirmed: nothing stored")
        fingerprint = seen
    elif not url.startswith("http://127.0.0.1") and not url.startswith("http://localhost"):
        raise ValueError("a node beyond this machine needs https:// (or an SSH tunnel to "
                         "http://127.0.0.1:PORT)")  # fmt: skip
    key = os.environ.get(KEY_ENV) or prompt_secret("the node's trade-scoped API key: ")
    if not key.startswith("dk_"):
        raise ValueError("that is not an API key of the node (they start with dk_)")
    vault, db = unlock(args)
    try:
        CredentialStore(vault.paths.profile, db, actor="cli").set(NAME, {SECRET_FIELD: key})
    finally:
        db.close()
    path = _settings_path(args)
    settings = load_settings(path)
    node = settings.node.model_copy(update={"venue": "node", "url": url,
                                            "fingerprint": fingerprint})  # fmt: skip
    save_settings(settings.model_copy(update={"node": node}), path)
    print(f"orders now go through the node at {url}" + (" (certificate pinned)"
                                                       if fingerprint else ""))  # fmt: skip
    return 0


def _client(args: argparse.Namespace) -> NodeExecution:
    from app.settings import load_settings
    from services.brokers.node.execution import NodeExecution

    node = load_settings(_settings_path(args)).node
    url = args.url or node.url
    if not url:
        raise ValueError("which node? give --url or run `dalal node pair URL` first")
    return NodeExecution(url, _node_key(args), fingerprint=node.fingerprint)


@guarded
def resume(args: argparse.Namespace) -> int:
    from services.broker import BrokerError

    client = _client(args)

    async def call() -> str:
        try:
            return await client.resume(args.reason, args.to)
        finally:
            await client.close()

    try:
        state = asyncio.run(call())
    except BrokerError as e:
        raise ValueError(str(e)) from None
    print(f"the node is {state}")
    return 0


@guarded
def kill(args: argparse.Namespace) -> int:
    from services.broker import BrokerError

    client = _client(args)

    async def call() -> dict[str, Any]:
        try:
            return await client.kill(square_off=args.square_off, reason=args.reason)
        finally:
            await client.close()

    try:
        report = asyncio.run(call())
    except BrokerError as e:
        raise ValueError(str(e)) from None
    print(f"the node is HALTED; cancelled {len(report.get('cancelled') or [])} order(s), "
          f"{len(report.get('failed') or [])} failure(s)")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("node", help="trade through your order node (static IP)")
    sub = parser.add_subparsers(dest="node_command", required=True)
    p = sub.add_parser("pair", help="pin the node's certificate, store its API key, use it")
    p.add_argument("url", help="https://HOST:PORT of the node")
    p.add_argument("--fingerprint", help="the SHA-256 the node printed (skips the question)")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                   help="settings file to update")
    add_profile_args(p)
    p.set_defaults(func=pair, config_may_be_new=True)  # pairing writes the settings file
    for name, func, text in (("resume", resume, "leave HALTED on the node (audited there)"),
                             ("kill", kill, "halt the node, cancel its orders")):  # fmt: skip
        p = sub.add_parser(name, help=text)
        p.add_argument("--reason", required=name == "resume", default="cli kill switch",
                       help="why (recorded in the node's audit log)")
        p.add_argument("--url", default=None, help="the node (default: from the settings)")
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help="settings file")
        if name == "resume":
            p.add_argument("--to", choices=("ACTIVE", "REDUCING"), default="ACTIVE")
        else:
            p.add_argument("--square-off", action="store_true", help="also flatten positions")
        add_profile_args(p)
        p.set_defaults(func=func)
