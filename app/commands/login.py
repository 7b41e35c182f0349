"""``dalal login kite``: the daily browser login; the access token goes to the keyring.

The API key and secret must be stored first (``dalal credentials set kite``). A token that is
still valid (Kite tokens last until 06:00 IST) is kept unless ``--force`` is given.
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
    print(f"opening your browser on Kite's login page; if it does not open, visit:\n  {url}")


@guarded
def login_kite(args: argparse.Namespace) -> int:
    from app.cli import load_cli_settings
    from app.kite_runtime import endpoints_for
    from services.brokers.kite.execution import KiteBroker
    from services.brokers.kite.login import LoginFailed, login_and_store
    from services.brokers.kite.session import CredentialsMissing, KiteSecrets
    from services.clock import SystemClock, to_ist
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    redirect = args.redirect_url or settings.kite.redirect_url
    clock = SystemClock()
    vault, db = unlock(args)
    try:
        secrets = KiteSecrets(CredentialStore(vault.paths.profile, db, actor="cli"))
        current = secrets.token()
        if current is not None and current.valid_at(clock.now()) and not args.force:
            print(
                f"already logged in to Kite until {to_ist(current.expires_at):%Y-%m-%d %H:%M} IST"
            )
            return 0
        try:
            broker = KiteBroker(
                secrets.api_key(settings.kite.api_key), endpoints=endpoints_for(settings)
            )
            stored = asyncio.run(
                login_and_store(
                    broker,
                    secrets,
                    clock,
                    redirect_url=redirect,
                    open_browser=OPEN_BROWSER,
                    within=args.timeout,
                    on_listening=_print_url,
                )
            )
        except (LoginFailed, CredentialsMissing) as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(
        f"logged in to Kite; the session lasts until {to_ist(stored.expires_at):%Y-%m-%d %H:%M} IST"
    )
    return 0


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("login", help="log in to a broker in the browser")
    sub = parser.add_subparsers(dest="login_broker", required=True)
    p = sub.add_parser(
        "kite",
        help="Zerodha Kite: browser login, access token kept in the keyring until 06:00 IST",
    )
    p.add_argument(
        "--redirect-url",
        default=None,
        metavar="URL",
        help="your Kite Connect app's redirect URL (default from settings, "
        "http://127.0.0.1:5010/kite/callback)",
    )
    p.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the login")
    p.add_argument("--force", action="store_true", help="log in again even if still logged in")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(p)
    p.set_defaults(func=login_kite)
