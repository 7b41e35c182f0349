"""The generic interactive login: the broker's page in the browser, its redirect caught on
the loopback address, the fields handed to ``BrokerSession.complete_login``.

Brokers redirect after the trader's password and 2FA to the URL registered on their app,
with the session's fields in the query (a GET) or a form (a POST, as ICICI does). We listen
on that address (``127.0.0.1`` only) for exactly one redirect, hand its fields over and
close the listener. A TOTP session needs no browser: ``complete_login`` gets no fields and
uses the stored TOTP secret. A broker whose flow differs (Kite's nonce in
``redirect_params``) implements ``InteractiveSession.login`` instead.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from urllib.parse import urlsplit

from aiohttp import web

from services.broker import BrokerError
from services.brokers.ports import BrokerSession, LoginKind, SessionToken

log = logging.getLogger(__name__)

DONE_PAGE = (
    "<!doctype html><title>Dalal Terminal</title><body style='font-family:sans-serif'>"
    "<h2>Logged in.</h2><p>You can close this tab and return to the terminal.</p>"
)


class LoginFailed(BrokerError):
    """The login did not complete: cancelled, timed out, or the broker refused it."""


async def redirect_login(
    session: BrokerSession,
    open_browser: Callable[[str], object],
    *,
    redirect_url: str | None = None,
    within: float = 300.0,
    on_listening: Callable[[str], None] | None = None,
) -> SessionToken:
    if session.login_kind is LoginKind.TOTP:
        return await session.complete_login({})
    if redirect_url is None:
        raise LoginFailed(
            f"{session.broker}: set {session.broker}.redirect_url in the settings to the "
            "redirect URL registered on your broker app"
        )
    parts = urlsplit(redirect_url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise LoginFailed(
            f"redirect URL {redirect_url!r} must be http://127.0.0.1:<port>/<path>, the "
            "address registered on your broker app"
        )
    loop = asyncio.get_running_loop()
    result: asyncio.Future[dict[str, str]] = loop.create_future()

    async def callback(request: web.Request) -> web.StreamResponse:
        fields = dict(request.query)
        if request.method == "POST":
            fields.update({k: str(v) for k, v in (await request.post()).items()})
        if not result.done():
            result.set_result(fields)
        return web.Response(text=DONE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", parts.path or "/", callback)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", parts.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise LoginFailed(
                f"cannot listen on 127.0.0.1:{parts.port} for the login redirect ({exc}); "
                "is another login running?"
            ) from exc
        url = session.login_url()
        if url is None:
            raise LoginFailed(f"{session.broker} has no login page")
        if on_listening is not None:
            on_listening(url)
        await asyncio.to_thread(open_browser, url)
        try:
            fields = await asyncio.wait_for(result, within)
        except TimeoutError:
            raise LoginFailed(
                f"no login from {session.broker} within {within:.0f} s; run the login again"
            ) from None
    finally:
        await runner.cleanup()
    return await session.complete_login(fields)
