"""The Upstox login: OAuth authorization code, a loopback redirect, and the day's token.

1. The browser opens Upstox's dialog with our ``client_id``, the redirect URI registered on
   the Upstox app (``http://127.0.0.1:<port>/...``) and a fresh random ``state``.
2. Upstox redirects to it with ``code`` and the same ``state``; a redirect whose state is not
   ours is refused (login CSRF: another page cannot feed us a code of its choosing).
3. ``LoginApi.token`` trades the code (single-use) for the access token.

The token is valid until 03:30 IST the next morning and there is no refresh token (SEBI wants
a fresh interactive login every day), so ``renew`` returns ``None``. The client id and secret
live under ``upstox`` in the keyring-backed store (``dalal credentials set upstox``), the
day's token under ``upstox-session``, with its expiry, so the terminal asks for a login
before it sends a dead token.
"""

from __future__ import annotations

import asyncio
import html
import logging
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from urllib.parse import urlencode, urlsplit

from aiohttp import web

from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.ports import LoginKind, LoginPrompt, SecretStore, SessionToken
from services.brokers.upstox.config import API_VERSION, BROKER, TOKEN_EXPIRY, UpstoxEndpoints
from services.brokers.upstox.errors import map_error
from services.clock import IST, Clock, SystemClock, to_ist

log = logging.getLogger(__name__)

CREDENTIALS = BROKER  # client_id (api_key), api_secret, redirect_uri
SESSION = f"{BROKER}-session"  # access_token, expires_at
DEFAULT_REDIRECT = "http://127.0.0.1:53682/cb/upstox"


_PAGE = (
    "<!doctype html><title>Dalal Terminal</title><body style='font-family:sans-serif'>"
    "<h2>{title}</h2><p>{text}</p>"
)


class LoginFailed(SessionExpired):
    """The interactive login did not complete: cancelled, timed out, or refused."""


def loopback_target(redirect_uri: str) -> tuple[str, int, str]:
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise LoginFailed(
            f"redirect URL {redirect_uri!r} must be http://127.0.0.1:<port>/<path>, the "
            "address registered on your Upstox app"
        )
    return "127.0.0.1", parts.port, parts.path or "/"


def token_expiry(login_at: datetime) -> datetime:
    """The 03:30 IST following ``login_at`` (the same morning for a login before 03:30)."""
    local = to_ist(login_at)
    expiry = datetime.combine(local.date(), TOKEN_EXPIRY, tzinfo=IST)
    return expiry if local < expiry else expiry + timedelta(days=1)


def dialog_url(base: str, client_id: str, redirect_uri: str, state: str) -> str:
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{base}?{query}"


class UpstoxSession:
    """The ``BrokerSession`` port for Upstox."""

    broker = BROKER
    login_kind = LoginKind.REDIRECT

    def __init__(
        self,
        store: SecretStore,
        *,
        endpoints: UpstoxEndpoints | None = None,
        redirect_uri: str | None = None,
        clock: Clock | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._store = store
        self.endpoints = endpoints or UpstoxEndpoints()
        self._redirect_uri = redirect_uri
        self._clock = clock or SystemClock()
        self._timeout = timeout
        self._state: str | None = None

    # -- credentials ------------------------------------------------------------------------

    def _credentials(self) -> dict[str, str]:
        entry = self._store.get(CREDENTIALS) or {}
        if not entry.get("api_key"):
            raise CredentialsMissing(
                "no Upstox API key (client id): run `dalal credentials set upstox` with the "
                "key and secret of your Upstox app"
            )
        return entry

    @property
    def redirect_uri(self) -> str:
        if self._redirect_uri:
            return self._redirect_uri
        return (self._store.get(CREDENTIALS) or {}).get("redirect_uri") or DEFAULT_REDIRECT

    @property
    def state(self) -> str | None:
        """The state of the login in progress (sent in the URL, checked on the redirect)."""
        return self._state

    # -- the port ---------------------------------------------------------------------------

    def login_url(self) -> str:
        client_id = self._credentials()["api_key"]
        self._state = secrets.token_urlsafe(16)
        return dialog_url(self.endpoints.login, client_id, self.redirect_uri, self._state)

    async def complete_login(self, callback: Mapping[str, str]) -> SessionToken:
        expected, self._state = self._state, None
        if expected is None or not secrets.compare_digest(
            str(callback.get("state", "")), expected
        ):
            raise SessionExpired(
                "Upstox login refused: the redirect does not carry this login's state (it "
                "belongs to another login or was forged); start the login again"
            )
        code = callback.get("code")
        if not code:
            reason = callback.get("error_description") or callback.get("error") or "no code"
            raise SessionExpired(f"Upstox login did not complete: {reason}")
        entry = self._credentials()
        secret = entry.get("api_secret")
        if not secret:
            raise CredentialsMissing(
                "no Upstox API secret in the keyring: run `dalal credentials set upstox`"
            )
        from services.brokers.upstox.client import UpstoxApi

        api = UpstoxApi(None, endpoints=self.endpoints, timeout=self._timeout)
        try:
            response = await api.raw(
                api.login.token,
                API_VERSION,
                code=code,
                client_id=entry["api_key"],
                client_secret=secret,
                redirect_uri=self.redirect_uri,
                grant_type="authorization_code",
            )
        except Exception as exc:
            error = map_error(exc, "log in to Upstox")
            if isinstance(error, SessionExpired) or "UDAPI100057" in str(getattr(exc, "body", "")):
                raise SessionExpired(
                    "Upstox refused the login code (it is single-use and short-lived, or the "
                    "app's key, secret or redirect URL do not match); start the login again"
                ) from exc
            raise error from exc
        finally:
            api.close()
        token = str(response.access_token or "")
        if not token:
            raise SessionExpired("Upstox answered the login without an access token")
        stored = SessionToken(token, token_expiry(self._clock.now()))
        await asyncio.to_thread(
            self._store.set,
            SESSION,
            {"access_token": token, "expires_at": stored.expires_at.isoformat()},
        )
        return stored

    def current(self, now: datetime) -> SessionToken | None:
        entry = self._store.get(SESSION)
        if not entry or "access_token" not in entry or "expires_at" not in entry:
            return None
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
        except ValueError:
            return None
        if expires.tzinfo is None:
            return None
        token = SessionToken(entry["access_token"], expires)
        return token if token.valid_at(now) else None

    async def login(
        self,
        open_browser: Callable[[str], object],
        *,
        within: float = 300.0,
        on_listening: Callable[[str], None] | None = None,
        values: Mapping[str, str] | None = None,
        prompt: LoginPrompt | None = None,
    ) -> SessionToken:
        """The whole browser login: listen on the redirect URI, open the dialog, trade the code.

        The listener binds 127.0.0.1 only and takes exactly one redirect carrying this
        login's state; any other request is answered 400 and the listener keeps waiting.
        ``open_browser`` runs in a thread (a browser may take a while to start).
        """
        host, port, path = loopback_target(self.redirect_uri)
        url = self.login_url()
        state = self._state
        loop = asyncio.get_running_loop()
        result: asyncio.Future[dict[str, str]] = loop.create_future()

        async def callback(request: web.Request) -> web.StreamResponse:
            query = dict(request.query)
            if query.get("state") != state:
                log.warning("ignored an Upstox redirect without this login's state")
                return _page(400, "Not this login", "This redirect is not from this login.")
            if result.done():
                return _page(409, "Already done", "This login has already been handled.")
            if "code" not in query:
                reason = query.get("error_description") or query.get("error") or "no code"
                result.set_exception(LoginFailed(f"Upstox login did not complete: {reason}"))
                return _page(400, "Upstox login failed", f"{reason}. Start the login again.")
            result.set_result(query)
            return _page(200, "Logged in to Upstox.", "You can close this tab.")

        app = web.Application()
        app.router.add_get(path, callback)
        runner = web.AppRunner(app, handle_signals=False, access_log=None)
        await runner.setup()
        try:
            site = web.TCPSite(runner, host, port, reuse_address=True)
            try:
                await site.start()
            except OSError as exc:
                raise LoginFailed(
                    f"cannot listen on {host}:{port} for Upstox's redirect ({exc.strerror}); "
                    "is another login running?"
                ) from exc
            if on_listening is not None:
                on_listening(url)
            await asyncio.to_thread(open_browser, url)
            try:
                query = await asyncio.wait_for(result, within)
            except TimeoutError:
                raise LoginFailed(
                    f"no login from Upstox within {within:.0f} s; run the login again"
                ) from None
        finally:
            await runner.cleanup()
        self._state = state
        return await self.complete_login(query)

    async def renew(self, now: datetime) -> SessionToken | None:
        return None  # Upstox has no refresh token: the trader logs in again each day

    def adopt(self, access_token: str, login_at: datetime) -> SessionToken:
        """``TokenHandover``: a token from the desktop's login, kept until 03:30 IST."""
        token = SessionToken(access_token, token_expiry(login_at))
        self._store.set(
            SESSION, {"access_token": access_token, "expires_at": token.expires_at.isoformat()}
        )
        return token

    def forget(self) -> None:
        self._store.delete(SESSION)


def _page(status: int, title: str, text: str) -> web.Response:
    body = _PAGE.format(title=html.escape(title), text=html.escape(text))
    return web.Response(status=status, text=body, content_type="text/html")
