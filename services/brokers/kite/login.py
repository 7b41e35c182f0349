"""Kite's browser login, caught by a one-shot listener on the loopback address.

Kite redirects the browser, after the trader's password and 2FA, to the redirect URL
registered on their Kite Connect app with ``request_token`` and ``status=success``. We
listen on that address (``127.0.0.1`` only, never all interfaces) for exactly one good
redirect, exchange the token for the day's access token and close the listener.

Kite has no OAuth ``state``; it does pass ``redirect_params`` from the login URL back on the
redirect, so we send a fresh random nonce that way and refuse a redirect without it: another
page in the browser cannot feed us a request token of its own choosing (login CSRF).
A redirect that is not ours is answered 400 and the listener keeps waiting; a login the
trader cancelled (any ``status`` other than ``success``) ends the flow with an error.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol
from urllib.parse import quote, urlencode, urlsplit

from aiohttp import web

from services.broker import BrokerError
from services.brokers.kite.session import StoredToken
from services.clock import Clock

log = logging.getLogger(__name__)

DONE_PAGE = (
    "<!doctype html><title>Dalal Terminal</title><body style='font-family:sans-serif'>"
    "<h2>Logged in to Kite.</h2><p>You can close this tab and return to the terminal.</p>"
)
FAILED_PAGE = (
    "<!doctype html><title>Dalal Terminal</title><body style='font-family:sans-serif'>"
    "<h2>Kite login failed.</h2><p>{reason}</p>"
)


class LoginFailed(BrokerError):
    """The login did not complete: cancelled, timed out, or the token exchange failed."""


class SessionFactory(Protocol):
    """What the flow needs of ``KiteBroker``."""

    def login_url(self) -> str: ...

    async def create_session(self, request_token: str, api_secret: str) -> str: ...


@dataclass(frozen=True, slots=True)
class RedirectTarget:
    host: str
    port: int
    path: str


def redirect_target(redirect_url: str) -> RedirectTarget:
    parts = urlsplit(redirect_url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise LoginFailed(
            f"redirect URL {redirect_url!r} must be http://127.0.0.1:<port>/<path>, the "
            "address registered on your Kite Connect app"
        )
    return RedirectTarget("127.0.0.1", parts.port, parts.path or "/")


def login_url_with_state(base: str, state: str) -> str:
    """``base`` (the SDK's login URL) plus ``redirect_params`` carrying our nonce."""
    return f"{base}&redirect_params={quote(urlencode({'state': state}), safe='')}"


async def login(
    broker: SessionFactory,
    api_secret: str,
    *,
    redirect_url: str,
    open_browser: Callable[[str], object],
    within: float = 300.0,
    on_listening: Callable[[str], None] | None = None,
) -> str:
    """Run the whole login and return the access token (the caller stores it).

    ``open_browser`` is ``webbrowser.open`` in the app (run in a thread: it may block while
    a browser starts) and anything that follows the URL in tests. ``on_listening`` gets the
    login URL once the listener is up, for a "open this address" fallback message.
    """
    target = redirect_target(redirect_url)
    state = secrets.token_urlsafe(16)
    loop = asyncio.get_running_loop()
    result: asyncio.Future[str] = loop.create_future()

    async def callback(request: web.Request) -> web.StreamResponse:
        query = request.query
        if query.get("state") != state:
            log.warning("ignored a Kite redirect without our login state")
            return _page(400, "This redirect does not belong to the login in progress.")
        if result.done():
            return _page(409, "This login has already been handled.")
        status, token = query.get("status"), query.get("request_token")
        if status != "success" or not token:
            reason = f"Kite reported status {status!r}" if status else "no status from Kite"
            result.set_exception(LoginFailed(f"Kite login did not succeed: {reason}"))
            return _page(400, f"{reason}. Start the login again from the terminal.")
        result.set_result(token)
        return web.Response(text=DONE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_get(target.path, callback)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, target.host, target.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise LoginFailed(
                f"cannot listen on {target.host}:{target.port} for Kite's redirect ({exc}); "
                "is another login running?"
            ) from exc
        url = login_url_with_state(broker.login_url(), state)
        if on_listening is not None:
            on_listening(url)
        await asyncio.to_thread(open_browser, url)
        try:
            request_token = await asyncio.wait_for(result, within)
        except TimeoutError:
            raise LoginFailed(
                f"no login from Kite within {within:.0f} s; run the login again"
            ) from None
    finally:
        await runner.cleanup()
    try:
        return await broker.create_session(request_token, api_secret)
    except BrokerError as exc:
        raise LoginFailed(f"Kite refused the login token: {exc}") from exc


def _page(status: int, reason: str) -> web.Response:
    return web.Response(
        status=status, text=FAILED_PAGE.format(reason=html.escape(reason)), content_type="text/html"
    )


class TokenSink(Protocol):
    def save_token(self, access_token: str, login_at: datetime) -> StoredToken: ...

    def api_secret(self) -> str: ...


async def login_and_store(
    broker: SessionFactory,
    secrets: TokenSink,
    clock: Clock,
    *,
    redirect_url: str,
    open_browser: Callable[[str], object],
    within: float = 300.0,
    on_listening: Callable[[str], None] | None = None,
) -> StoredToken:
    """``login`` with the secret from the keyring; the token goes back to the keyring.

    Keyring and database calls block, so they run in a worker thread.
    """
    api_secret = await asyncio.to_thread(secrets.api_secret)
    token = await login(
        broker,
        api_secret,
        redirect_url=redirect_url,
        open_browser=open_browser,
        within=within,
        on_listening=on_listening,
    )
    return await asyncio.to_thread(secrets.save_token, token, clock.now())
