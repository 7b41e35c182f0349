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


@guarded
def login_breeze(args: argparse.Namespace) -> int:
    """ICICI's login page posts ``API_Session`` to the loopback listener (or it is pasted);
    the SDK's customerdetails exchange turns it into the day's session key, kept in the
    vault until midnight IST."""
    from app.cli import load_cli_settings
    from services.brokers.breeze.session import BreezeSecrets, BreezeSession, LoginFailed
    from services.brokers.errors import BrokerError
    from services.clock import SystemClock, to_ist
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    clock = SystemClock()
    vault, db = unlock(args)
    try:
        secrets = BreezeSecrets(CredentialStore(vault.paths.profile, db, actor="cli"))
        session = BreezeSession(
            secrets,
            clock,
            endpoints=settings.breeze.endpoints(),
            redirect_url=args.redirect_url or settings.breeze.redirect_url,
        )
        current = session.current(clock.now())
        if current is not None and not args.force:
            print(
                "already logged in to Breeze until "
                f"{to_ist(current.expires_at):%Y-%m-%d %H:%M} IST"
            )
            return 0
        try:
            value = args.session
            if args.paste:
                value = input("API_Session from ICICI's redirect: ").strip()
            if value:
                stored = asyncio.run(session.complete_login({"API_Session": value}))
            else:

                def show(url: str) -> None:
                    print(
                        "opening your browser on ICICI's login page; if it does not open, "
                        f"visit:\n  {url}"
                    )

                stored = asyncio.run(
                    session.login(OPEN_BROWSER, within=args.timeout, on_listening=show)
                )
        except (LoginFailed, BrokerError, EOFError) as exc:
            print(f"error: {exc or 'no API_Session given'}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(
        "logged in to Breeze; the session lasts until "
        f"{to_ist(stored.expires_at):%Y-%m-%d %H:%M} IST"
    )
    return 0


@guarded
def login_angelone(args: argparse.Namespace) -> int:
    """Client code, PIN and TOTP: the code from the stored seed (pyotp), or typed."""
    from app.angelone import build_parts
    from app.cli import load_cli_settings
    from app.commands.vault import prompt_secret
    from services.broker import BrokerError
    from services.brokers.angelone.session import AngelSession
    from services.clock import SystemClock, to_ist
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    clock = SystemClock()
    vault, db = unlock(args)
    try:
        store = CredentialStore(vault.paths.profile, db, actor="cli")
        try:
            session = build_parts(settings, store, clock).session
            assert isinstance(session, AngelSession)
            current = session.current(clock.now())
            if current is not None and not args.force:
                until = to_ist(current.expires_at)
                print(f"already logged in to Angel One until {until:%Y-%m-%d %H:%M} IST")
                return 0
            session.login_url()  # the client code is stored: ask for a code only then
            code = args.totp or ""
            if not code and session.secrets.totp_secret() is None:
                code = prompt_secret("Angel One TOTP code (6 digits): ").strip()
            token = asyncio.run(session.complete_login({"totp": code}))
        except BrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        db.close()
    until = to_ist(token.expires_at)
    print(f"logged in to Angel One; the session lasts until {until:%Y-%m-%d %H:%M} IST")
    return 0


@guarded
def login_upstox(args: argparse.Namespace) -> int:
    """Upstox's OAuth dialog in the browser, the redirect caught on 127.0.0.1 with its state
    checked, the single-use code traded for the day's token (kept until 03:30 IST)."""
    from app.cli import load_cli_settings
    from services.brokers.errors import BrokerError
    from services.brokers.upstox.session import UpstoxSession
    from services.clock import SystemClock, to_ist
    from services.security import CredentialStore

    settings = load_cli_settings(args)
    clock = SystemClock()
    vault, db = unlock(args)
    try:
        session = UpstoxSession(
            CredentialStore(vault.paths.profile, db, actor="cli"),
            endpoints=settings.upstox.endpoints(),
            redirect_uri=args.redirect_url or settings.upstox.redirect_url,
            clock=clock,
        )
        current = session.current(clock.now())
        if current is not None and not args.force:
            print(
                "already logged in to Upstox until "
                f"{to_ist(current.expires_at):%Y-%m-%d %H:%M} IST"
            )
            return 0

        def show(url: str) -> None:
            print(
                "opening your browser on Upstox's login page; if it does not open, visit:\n"
                f"  {url}"
            )

        try:
            stored = asyncio.run(
                session.login(OPEN_BROWSER, within=args.timeout, on_listening=show)
            )
        except BrokerError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        db.close()
    print(
        "logged in to Upstox; the session lasts until "
        f"{to_ist(stored.expires_at):%Y-%m-%d %H:%M} IST"
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
    b = sub.add_parser(
        "breeze",
        help="ICICI Direct Breeze: browser login (or a pasted API_Session), session kept in "
        "the vault until midnight IST",
    )
    b.add_argument(
        "--redirect-url",
        default=None,
        metavar="URL",
        help="your Breeze app's redirect URL, if it is a loopback one (default from settings, "
        "http://127.0.0.1:5011/breeze/callback)",
    )
    how = b.add_mutually_exclusive_group()
    how.add_argument("--paste", action="store_true", help="type the API_Session instead")
    how.add_argument("--session", default=None, help=argparse.SUPPRESS)
    b.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the login")
    b.add_argument("--force", action="store_true", help="log in again even if still logged in")
    b.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(b)
    b.set_defaults(func=login_breeze)
    p = sub.add_parser(
        "angelone",
        help="Angel One: client code, PIN and TOTP (no browser); the session lasts until "
        "midnight IST",
    )
    p.add_argument(
        "--totp",
        default=None,
        metavar="CODE",
        help="the six-digit code (default: generated from the stored totp_secret, or asked)",
    )
    p.add_argument("--force", action="store_true", help="log in again even if still logged in")
    p.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(p)
    p.set_defaults(func=login_angelone)
    u = sub.add_parser(
        "upstox",
        help="Upstox: browser login (OAuth), token kept in the vault until 03:30 IST",
    )
    u.add_argument(
        "--redirect-url",
        default=None,
        metavar="URL",
        help="your Upstox app's redirect URL (default from settings, "
        "http://127.0.0.1:53682/cb/upstox)",
    )
    u.add_argument("--timeout", type=float, default=300.0, help="seconds to wait for the login")
    u.add_argument("--force", action="store_true", help="log in again even if still logged in")
    u.add_argument("--config", type=Path, default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    add_profile_args(u)
    u.set_defaults(func=login_upstox)
