"""``dalal login BROKER``: the daily login of any registered live broker; the token goes to
the keyring (or the profile's vault).

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

from app.commands.vault import add_profile_args, guarded, unlock

Opener = Callable[[str], object]

# Tests replace this with something that follows the URL without a browser.
OPEN_BROWSER: Opener = webbrowser.open


def _print_url(url: str) -> None:
    print(f"opening your browser on the broker's login page; if it does not open, visit:\n  {url}")


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
    section = settings.broker_section(name)
    if args.redirect_url:
        section["redirect_url"] = args.redirect_url
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
            redirect = section.get("redirect_url")
            token = asyncio.run(
                interactive_login(
                    name,
                    session,
                    OPEN_BROWSER,
                    redirect_url=str(redirect) if redirect else None,
                    within=args.timeout,
                    on_listening=_print_url,
                )
            )
        except BrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
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
        p = sub.add_parser(
            entry.name,
            help=f"{entry.title}: the day's login, token kept in the keyring until it expires",
        )
        p.add_argument(
            "--redirect-url",
            default=None,
            metavar="URL",
            help=f"your {entry.title} app's redirect URL (default from the settings' "
            f"{entry.name} section)",
        )
        p.add_argument(
            "--timeout", type=float, default=300.0, help="seconds to wait for the login"
        )
        p.add_argument(
            "--force", action="store_true", help="log in again even if still logged in"
        )
        p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        add_profile_args(p)
        p.set_defaults(func=login_broker)
