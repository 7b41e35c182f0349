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
from collections.abc import Mapping
from datetime import datetime, time, timedelta
from types import ModuleType
from typing import Any
from urllib.parse import quote

from services.brokers.breeze.config import NAME, BreezeEndpoints
from services.brokers.breeze.errors import map_exception
from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.ports import LoginKind, SecretStore, SessionToken
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
    ) -> None:
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

    def current(self, now: datetime) -> SessionToken | None:
        token = self._secrets.token()
        return token if token is not None and token.valid_at(now) else None

    async def renew(self, now: datetime) -> SessionToken | None:
        return None  # ICICI requires the trader's password and OTP every day

    def forget(self) -> None:
        self._secrets.forget()
