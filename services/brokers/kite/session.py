"""The Kite API key, secret and the day's access token, kept in the keyring.

Kite access tokens are valid until 06:00 IST the next morning (SEBI wants a fresh interactive
login every day). We store the expiry with the token so that the terminal asks for a login
before it sends a dead token, instead of finding out from a rejected order.

The store is any object with ``get``/``set``/``delete`` by broker name, which
``services.security.CredentialStore`` is: values go to the keyring, names and dates to the
database, and every change is audited there (a login is an audit event).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Protocol

from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.ports import LoginKind, LoginPrompt, SecretStore, SessionToken
from services.clock import IST, Clock, to_ist


class SessionFactory(Protocol):
    """What the login needs of ``KiteBroker``."""

    def login_url(self) -> str: ...

    async def create_session(self, request_token: str, api_secret: str) -> str: ...


__all__ = [
    "CREDENTIALS",
    "SESSION",
    "CredentialsMissing",
    "KiteSecrets",
    "KiteSession",
    "SecretStore",
    "StoredToken",
    "token_expiry",
]

CREDENTIALS = "kite"  # api_key, api_secret: ``dalal credentials set kite``
SESSION = "kite-session"  # access_token, expires_at: written by ``dalal login kite``
EXPIRY_TIME = time(6, 0)


def token_expiry(login_at: datetime) -> datetime:
    """The 06:00 IST following ``login_at`` (the same morning for a login before 06:00)."""
    local = to_ist(login_at)
    expiry = datetime.combine(local.date(), EXPIRY_TIME, tzinfo=IST)
    return expiry if local < expiry else expiry + timedelta(days=1)


@dataclass(frozen=True, slots=True)
class StoredToken:
    access_token: str
    expires_at: datetime

    def valid_at(self, now: datetime) -> bool:
        return now < self.expires_at


class KiteSecrets:
    """Reads and writes the Kite entries of a ``SecretStore``; never logs a value."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def api_key(self, configured: str | None = None) -> str:
        if configured:
            return configured
        key = (self._store.get(CREDENTIALS) or {}).get("api_key")
        if not key:
            raise CredentialsMissing(
                "no Kite API key: set it in the settings or run `dalal credentials set kite`"
            )
        return key

    def api_secret(self) -> str:
        secret = (self._store.get(CREDENTIALS) or {}).get("api_secret")
        if not secret:
            raise CredentialsMissing(
                "no Kite API secret in the keyring: run `dalal credentials set kite`"
            )
        return secret

    def token(self) -> StoredToken | None:
        entry = self._store.get(SESSION)
        if not entry or "access_token" not in entry or "expires_at" not in entry:
            return None
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
        except ValueError:
            return None
        if expires.tzinfo is None:
            return None
        return StoredToken(entry["access_token"], expires)

    def valid_token(self, now: datetime) -> str | None:
        """The access token if one is stored and not past its expiry, else ``None``."""
        token = self.token()
        return token.access_token if token is not None and token.valid_at(now) else None

    def save_token(self, access_token: str, login_at: datetime) -> StoredToken:
        stored = StoredToken(access_token, token_expiry(login_at))
        self._store.set(
            SESSION,
            {"access_token": access_token, "expires_at": stored.expires_at.isoformat()},
        )
        return stored

    def forget_token(self) -> None:
        """Drop a token Kite refused, so the next start asks for a login at once."""
        self._store.delete(SESSION)


class KiteSession:
    """The ``BrokerSession`` port for Kite: a browser login every day, no headless renewal.

    ``client`` (the ``KiteBroker``) makes the login URL and turns a request token into an
    access token through the SDK; it is passed in so that this module never imports it.
    """

    broker = "kite"
    login_kind = LoginKind.REDIRECT

    def __init__(
        self,
        secrets: KiteSecrets,
        clock: Clock,
        *,
        client: SessionFactory,
        redirect_url: str,
    ) -> None:
        self.secrets = secrets
        self._clock = clock
        self._client = client
        self.redirect_url = redirect_url

    def login_url(self) -> str | None:
        self.secrets.api_key()  # CredentialsMissing before a page that cannot work
        return self._client.login_url()

    async def complete_login(self, callback: Mapping[str, str]) -> SessionToken:
        request_token = callback.get("request_token", "").strip()
        if not request_token or callback.get("status", "success") != "success":
            raise SessionExpired("the Kite login did not return a request token; log in again")
        secret = await asyncio.to_thread(self.secrets.api_secret)
        access_token = await self._client.create_session(request_token, secret)
        stored = self.secrets.save_token(access_token, self._clock.now())
        return SessionToken(stored.access_token, stored.expires_at)

    def current(self, now: datetime) -> SessionToken | None:
        token = self.secrets.token()
        if token is None or not token.valid_at(now):
            return None
        return SessionToken(token.access_token, token.expires_at)

    async def renew(self, now: datetime) -> SessionToken | None:
        return None  # SEBI: Kite wants an interactive login every day

    def adopt(self, access_token: str, login_at: datetime) -> SessionToken:
        """``TokenHandover``: a token from the desktop's login, kept until 06:00 IST."""
        stored = self.secrets.save_token(access_token, login_at)
        return SessionToken(stored.access_token, stored.expires_at)

    def forget(self) -> None:
        self.secrets.forget_token()

    async def login(
        self,
        open_browser: Callable[[str], object],
        *,
        within: float = 300.0,
        on_listening: Callable[[str], None] | None = None,
        values: Mapping[str, str] | None = None,
        prompt: LoginPrompt | None = None,
    ) -> SessionToken:
        """The browser login, caught on the loopback redirect URL (``login.py``)."""
        from services.brokers.kite.login import login_and_store

        stored = await login_and_store(
            self._client,
            self.secrets,
            self._clock,
            redirect_url=self.redirect_url,
            open_browser=open_browser,
            within=within,
            on_listening=on_listening,
        )
        return SessionToken(stored.access_token, stored.expires_at)
