"""The Breeze login: API key and secret in the vault, the day's session from ICICI's page.

ICICI's login page (``/apiuser/login?api_key=<URL-encoded key>``; keys contain ``+ = %``)
takes the trader's password and OTP, then makes the *browser POST a form* with one field,
``API_Session``, to the redirect URL registered for the app (research/brokers.md §3). The
terminal's loopback listener accepts that POST; a trader whose app is registered elsewhere
pastes the value instead. Either way ``complete_login({"API_Session": ...})`` runs the SDK's
``customerdetails`` exchange (a GET with a JSON body) which answers base64 ``user:key``: the
*session key* that signs every later request (``X-SessionToken``) and authenticates the
stream. We keep that pair, not the API_Session, under ``breeze-session`` with its expiry:
ICICI ends sessions at midnight IST, so the terminal asks for a login before sending a dead
key. A restart the same day rebuilds the SDK client from the stored pair without a call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import quote, urlsplit

from aiohttp import web

from services.brokers.breeze.config import NAME, BreezeEndpoints
from services.brokers.breeze.errors import map_exception
from services.brokers.errors import BrokerError, CredentialsMissing, SessionExpired
from services.brokers.ports import LoginKind, LoginPrompt, SecretStore, SessionToken
from services.clock import IST, Clock, to_ist

CREDENTIALS = NAME  # api_key, api_secret: ``dalal credentials set breeze``
SESSION = f"{NAME}-session"  # session_key, user_id, expires_at: ``dalal login breeze``
FORM_FIELD = "API_Session"


def session_expiry(login_at: datetime) -> datetime:
    """The IST midnight after ``login_at``: when ICICI ends the day's session."""
    local = to_ist(login_at)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=IST)


def login_url(endpoints: BreezeEndpoints, api_key: str) -> str:
    return f"{endpoints.login}?api_key={quote(api_key, safe='')}"


def sdk_client(module: ModuleType, api_key: str, api_secret: str, token: SessionToken) -> Any:
    """A ``BreezeConnect`` signed in with a stored session, built without any request."""
    client = module.BreezeConnect(api_key)
    client.secret_key = api_secret
    client.user_id = token.extra["user_id"]
    client.session_key = token.access_token
    client.api_handler = module.ApificationBreeze(client)
    return client


def exchange_api_session(
    module: ModuleType, api_key: str, api_secret: str, api_session: str
) -> Any:
    """The SDK's ``customerdetails`` exchange (blocking): a signed-in ``BreezeConnect``.

    ``generate_session`` would also download the security master twice; we call its first
    step and build the request signer ourselves.
    """
    client = module.BreezeConnect(api_key)
    client.secret_key = api_secret
    client.session_key = api_session
    client.api_util()
    client.api_handler = module.ApificationBreeze(client)
    return client


class BreezeSecrets:
    """The Breeze entries of a ``SecretStore``; never logs or raises with a value in it."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def api_key(self, configured: str | None = None) -> str:
        if configured:
            return configured
        key = (self._store.get(CREDENTIALS) or {}).get("api_key")
        if not key:
            raise CredentialsMissing(
                "no Breeze API key: run `dalal credentials set breeze` (api_key, api_secret)"
            )
        return key

    def api_secret(self) -> str:
        secret = (self._store.get(CREDENTIALS) or {}).get("api_secret")
        if not secret:
            raise CredentialsMissing(
                "no Breeze API secret in the vault: run `dalal credentials set breeze`"
            )
        return secret

    def token(self) -> SessionToken | None:
        entry = self._store.get(SESSION) or {}
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
            key, user = entry["session_key"], entry["user_id"]
        except (KeyError, ValueError):
            return None
        if expires.tzinfo is None or not key or not user:
            return None
        return SessionToken(key, expires, {"user_id": user})

    def save(self, token: SessionToken) -> None:
        self._store.set(
            SESSION,
            {
                "session_key": token.access_token,
                "user_id": token.extra["user_id"],
                "expires_at": token.expires_at.isoformat(),
            },
        )

    def forget(self) -> None:
        self._store.delete(SESSION)


class BreezeSession:
    """``BrokerSession`` for Breeze: a REDIRECT login whose redirect is a form POST."""

    broker = NAME
    login_kind = LoginKind.REDIRECT
    form_field = FORM_FIELD

    def __init__(
        self,
        secrets: BreezeSecrets,
        clock: Clock,
        *,
        endpoints: BreezeEndpoints | None = None,
        api_key: str | None = None,
        load_sdk: Any = None,
        redirect_url: str = "http://127.0.0.1:5011/breeze/callback",
    ) -> None:
        self.redirect_url = redirect_url
        self._secrets = secrets
        self._clock = clock
        self.endpoints = endpoints or BreezeEndpoints()
        self._api_key = api_key
        self._load_sdk = load_sdk
        self.client: Any = None  # the signed-in SDK client of the last login

    def login_url(self) -> str:
        return login_url(self.endpoints, self._secrets.api_key(self._api_key))

    async def complete_login(self, callback: Mapping[str, str]) -> SessionToken:
        api_session = (callback.get(FORM_FIELD) or callback.get("apisession") or "").strip()
        if not api_session:
            raise SessionExpired(f"the ICICI login did not return an {FORM_FIELD}; log in again")
        api_key = self._secrets.api_key(self._api_key)
        api_secret = self._secrets.api_secret()
        from services.brokers.breeze import sdk

        loader = self._load_sdk or sdk.load_sdk
        try:
            module = await asyncio.to_thread(loader, self.endpoints)
            client = await asyncio.to_thread(
                exchange_api_session, module, api_key, api_secret, api_session
            )
        except Exception as exc:
            error = map_exception(exc, "log in to Breeze")
            if "authenticate" in str(exc).lower() or "session" in str(exc).lower():
                raise SessionExpired(
                    "ICICI refused the session: it is used or expired, or the API key does "
                    "not match the app; log in again"
                ) from exc
            raise error from exc
        token = SessionToken(
            str(client.session_key),
            session_expiry(self._clock.now()),
            {"user_id": str(client.user_id)},
        )
        self._secrets.save(token)
        self.client = client
        return token

    async def login(
        self,
        open_browser: Callable[[str], object],
        *,
        within: float = 300.0,
        on_listening: Callable[[str], None] | None = None,
        values: Mapping[str, str] | None = None,
        prompt: LoginPrompt | None = None,
    ) -> SessionToken:
        """The whole flow (``InteractiveSession``): ICICI's page, its form POST caught on the
        loopback redirect, the exchange, the vault. A pasted ``API_Session`` in ``values``
        (the trader's app redirects elsewhere) skips the browser."""
        pasted = ((values or {}).get(FORM_FIELD) or "").strip()
        if pasted:
            return await self.complete_login({FORM_FIELD: pasted})
        value = await capture_api_session(
            self.login_url(),
            self.redirect_url,
            open_browser=open_browser,
            within=within,
            on_listening=on_listening,
        )
        return await self.complete_login({FORM_FIELD: value})

    def current(self, now: datetime) -> SessionToken | None:
        token = self._secrets.token()
        return token if token is not None and token.valid_at(now) else None

    async def renew(self, now: datetime) -> SessionToken | None:
        return None  # ICICI requires the trader's password and OTP every day

    def forget(self) -> None:
        self._secrets.forget()


class LoginFailed(BrokerError):
    """The login did not complete: timed out, or the redirect carried no API_Session."""


DONE_PAGE = (
    "<!doctype html><title>Dalal Terminal</title><body style='font-family:sans-serif'>"
    "<h2>Logged in to ICICI Direct.</h2><p>You can close this tab and return to the "
    "terminal.</p>"
)


def redirect_target(redirect_url: str) -> tuple[str, int, str]:
    """Host, port and path of a loopback redirect URL; anything else is refused."""
    parts = urlsplit(redirect_url)
    if parts.scheme != "http" or parts.hostname != "127.0.0.1" or not parts.port:
        raise LoginFailed(
            f"redirect URL {redirect_url!r} is not http://127.0.0.1:<port>/...: the login "
            "listener binds the loopback address only (or paste the API_Session instead)"
        )
    return parts.hostname, parts.port, parts.path or "/"


async def capture_api_session(
    login_page: str,
    redirect_url: str,
    *,
    open_browser: Callable[[str], object],
    within: float = 300.0,
    on_listening: Callable[[str], None] | None = None,
) -> str:
    """Open ICICI's login page and wait for its form POST of ``API_Session`` on loopback.

    ICICI's login has no ``state`` parameter to bind the answer to this request; the
    listener is one-shot, on 127.0.0.1 only, and lives only while the trader logs in, and
    the session it receives is worthless without our API secret.
    """
    host, port, path = redirect_target(redirect_url)
    got: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    async def callback(request: web.Request) -> web.StreamResponse:
        fields: dict[str, str] = dict(request.query)
        if request.method == "POST":
            form = await request.post()
            fields.update({k: str(v) for k, v in form.items()})
        value = (fields.get(FORM_FIELD) or fields.get("apisession") or "").strip()
        if not value:
            return web.Response(
                status=400, text="no API_Session in this request", content_type="text/plain"
            )
        if not got.done():
            got.set_result(value)
        return web.Response(text=DONE_PAGE, content_type="text/html")

    app = web.Application()
    app.router.add_route("*", path, callback)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            raise LoginFailed(
                f"cannot listen on {host}:{port} for the login ({exc.strerror}); is another "
                "login running?"
            ) from exc
        if on_listening is not None:
            on_listening(login_page)
        # Starting a browser can block: off the loop, which must stay free for the POST.
        opening = asyncio.get_running_loop().run_in_executor(None, open_browser, login_page)
        try:
            return await asyncio.wait_for(got, within)
        except TimeoutError as exc:
            raise LoginFailed(
                f"no login arrived within {within:g} s; run `dalal login breeze` again"
            ) from exc
        finally:
            opening.cancel()
    finally:
        await runner.cleanup()
