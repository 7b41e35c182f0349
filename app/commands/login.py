"""``dalal login BROKER``: the daily login of any registered live broker; the token goes to
the keyring (or the profile's vault).

One command for every broker: the flow is the broker's own (``services/brokers/<name>/
session.py``), reached through the registry and ``services.brokers.live.interactive_login``;
its options come from the broker's ``LoginSpec`` (a TOTP code, a pasted session). This
module only reads the terminal: it hands the flow a prompt for what it needs.

The API key and secret must be stored first (``dalal credentials set BROKER``). A token that
is still valid is kept unless ``--force`` is given.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import webbrowser
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from app.commands.vault import add_profile_args, guarded, prompt_secret, unlock

if TYPE_CHECKING:
    from services.brokers.ports import LoginField

Opener = Callable[[str], object]

# Tests replace this with something that follows the URL without a browser.
OPEN_BROWSER: Opener = webbrowser.open


def _print_url(url: str) -> None:
    print(f"opening your browser on the broker's login page; if it does not open, visit:\n  {url}")


def _ask(field: LoginField) -> str:
    """One answer from the terminal (hidden for a secret); EOFError when stdin has ended."""
    label = f"{field.label}: "
    return (prompt_secret(label) if field.secret else input(label)).strip()


async def _prompt(field: LoginField) -> str:
    return await asyncio.to_thread(_ask, field)


def _dest(field: LoginField) -> str:
    return field.option.replace("-", "_")


@guarded
def login_broker(args: argparse.Namespace) -> int:
    from app.cli import load_cli_settings
    from services.broker import BrokerError
    from services.brokers import registry
    from services.brokers.live import interactive_login
    from services.bus import EventBus
    from services.clock import SystemClock, to_ist
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    name: str = args.login_broker
    title = registry.entry(name).title
    spec = registry.login_spec(name)
    section = settings.broker_section(name)
    if getattr(args, "redirect_url", None):
        section["redirect_url"] = args.redirect_url
    values = {f.name: str(v) for f in spec.fields if (v := getattr(args, _dest(f), None))}
    clock = SystemClock()
    vault, db = unlock(args)
    try:
        secrets = CredentialStore(vault.paths.profile, db, actor="cli")
        try:
            parts = registry.build(
                name, registry.BrokerContext(clock, EventBus(), secrets=secrets, settings=section)
            )
            session = parts.session
            current = session.current(clock.now()) if session is not None else None
            if current is not None and not args.force:
                until = to_ist(current.expires_at)
                print(f"already logged in to {title} until {until:%Y-%m-%d %H:%M} IST")
                return 0
            if getattr(args, "paste", False):
                for field in spec.fields:
                    if field.paste and field.name not in values:
                        values[field.name] = _ask(field)
                        if not values[field.name]:
                            raise EOFError(f"no {field.name} given")
            redirect = section.get("redirect_url")
            token = asyncio.run(
                interactive_login(
                    name,
                    session,
                    OPEN_BROWSER,
                    redirect_url=str(redirect) if redirect else None,
                    within=float(getattr(args, "timeout", 300.0)),
                    on_listening=_print_url,
                    values=values,
                    prompt=_prompt,
                )
            )
        except (BrokerError, EOFError) as exc:
            print(f"error: {exc or 'no answer given'}", file=sys.stderr)
            return 1
    finally:
        db.close()
    until = to_ist(token.expires_at)
    print(f"logged in to {title}; the session lasts until {until:%Y-%m-%d %H:%M} IST")
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from services.brokers import registry

    parser = subparsers.add_parser("login", help="log in to a broker in the browser")
    sub = parser.add_subparsers(dest="login_broker", required=True)
    for entry in registry.entries(registry.Role.SESSION):
        spec = registry.login_spec(entry.name)
        p = sub.add_parser(entry.name, help=spec.help)
        if spec.browser:
            p.add_argument(
                "--redirect-url",
                default=None,
                metavar="URL",
                help=f"your {entry.title} app's redirect URL, a loopback one (default from "
                f"the settings' {entry.name} section)",
            )
            p.add_argument(
                "--timeout", type=float, default=300.0, help="seconds to wait for the login"
            )
        pasted = [f for f in spec.fields if f.paste]
        given = p.add_mutually_exclusive_group() if pasted else p
        if pasted:
            given.add_argument(
                "--paste",
                action="store_true",
                help="type the " + " and ".join(f.name for f in pasted) + " instead",
            )
        for field in spec.fields:
            # A pasted value on the command line would stay in the shell's history: hidden.
            target = given if field.paste else p
            target.add_argument(
                f"--{field.option}",
                dest=_dest(field),
                default=None,
                metavar="VALUE" if field.paste else "CODE",
                help=argparse.SUPPRESS if field.paste else field.help,
            )
        p.add_argument(
            "--force", action="store_true", help="log in again even if still logged in"
        )
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        add_profile_args(p)
        p.set_defaults(func=login_broker)
