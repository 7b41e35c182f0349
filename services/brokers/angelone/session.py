"""Angel One login: client code, PIN and a TOTP, no browser; the session lasts until midnight.

Credentials live in the app's ``SecretStore`` (the keyring-backed credential store) under
``angelone``: ``api_key``, ``client_code``, ``pin`` and, optionally, ``totp_secret`` (the
base32 seed Angel shows when TOTP is enabled). With the seed stored, codes come from pyotp
and the terminal can log in (and renew) without the trader; without it, the trader types
the six digits each morning. The day's tokens (JWT, refresh and feed tokens) are stored
under ``angelone-session`` with their expiry: Angel ends every session at midnight IST
(research/wave2.md §1), and SEBI wants a fresh login each trading day anyway.

Nothing here imports the SDK: the actual ``loginByPassword`` call is passed in
(``AngelExecution.login``), so this module stays cheap and testable.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, time, timedelta

from services.brokers.angelone.config import NAME, TITLE, TOTP_FIELD
from services.brokers.angelone.execution import AngelTokens
from services.brokers.errors import CredentialsMissing, SessionExpired
from services.brokers.ports import LoginKind, LoginPrompt, SecretStore, SessionToken
from services.clock import IST, Clock, to_ist

CREDENTIALS = NAME  # ``dalal credentials set angelone``
SESSION = f"{NAME}-session"
FIELDS = ("api_key", "client_code", "pin", "totp_secret")

Login = Callable[[str, str, str], Awaitable[AngelTokens]]


def session_expiry(login_at: datetime) -> datetime:
    """Midnight IST after ``login_at``: when Angel ends the session."""
    local = to_ist(login_at)
    return datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=IST)


def totp_now(secret: str, at: datetime | None = None) -> str:
    """The current six-digit code for a base32 seed (pyotp, RFC 6238, 30 s steps)."""
    import pyotp

    try:
        totp = pyotp.TOTP(secret.replace(" ", "").upper())
        return totp.at(at) if at is not None else totp.now()
    except (ValueError, TypeError):
        raise CredentialsMissing(
            "the stored Angel One TOTP secret is not a base32 seed: set it again with "
            "`dalal credentials set angelone`"
        ) from None


class AngelSecrets:
    """The Angel One entries of a ``SecretStore``; values never reach a log or a message."""

    def __init__(self, store: SecretStore) -> None:
        self._store = store

    def _credentials(self) -> dict[str, str]:
        return dict(self._store.get(CREDENTIALS) or {})

    def _need(self, field: str) -> str:
        value = self._credentials().get(field, "").strip()
        if not value:
            raise CredentialsMissing(
                f"no Angel One {field.replace('_', ' ')} stored: run "
                f"`dalal credentials set {NAME}`"
            )
        return value

    def api_key(self, configured: str | None = None) -> str:
        return configured or self._need("api_key")

    def client_code(self) -> str:
        return self._need("client_code")

    def pin(self) -> str:
        return self._need("pin")

    def totp_secret(self) -> str | None:
        return self._credentials().get("totp_secret", "").strip() or None

    def current(self, now: datetime) -> SessionToken | None:
        entry = self._store.get(SESSION)
        if not entry or not entry.get("access_token") or not entry.get("expires_at"):
            return None
        try:
            expires = datetime.fromisoformat(entry["expires_at"])
        except ValueError:
            return None
        if expires.tzinfo is None or now >= expires:
            return None
        extra = {k: entry.get(k, "") for k in ("refresh_token", "feed_token", "client_code")}
        return SessionToken(entry["access_token"], expires, extra)

    def save(self, token: SessionToken) -> None:
        self._store.set(
            SESSION,
            {
                "access_token": token.access_token,
                "expires_at": token.expires_at.isoformat(),
                **{k: str(v) for k, v in token.extra.items()},
            },
        )

    def forget(self) -> None:
        self._store.delete(SESSION)


class AngelSession:
    """The ``BrokerSession`` port for Angel One (``LoginKind.TOTP``)."""

    broker = NAME
    login_kind = LoginKind.TOTP

    def __init__(self, secrets: AngelSecrets, clock: Clock, *, login: Login) -> None:
        self.secrets = secrets
        self._clock = clock
        self._login = login

    def login_url(self) -> str | None:
        self.secrets.client_code()  # CredentialsMissing now rather than after typing a code
        return None

    async def complete_login(self, callback: Mapping[str, str]) -> SessionToken:
        """Log in with ``callback["totp"]`` (six digits typed) or, when none is given, a
        code generated from the stored seed."""
        code = (callback.get("totp") or "").strip()
        if not code:
            secret = self.secrets.totp_secret()
            if secret is None:
                raise CredentialsMissing(
                    f"{TITLE} needs the six-digit TOTP code (or store the TOTP secret with "
                    f"`dalal credentials set {NAME}`)"
                )
            code = totp_now(secret)
        if not (code.isdigit() and len(code) == 6):
            raise SessionExpired(f"{TITLE} TOTP codes are six digits; log in again")
        client_code = self.secrets.client_code()
        tokens = await self._login(client_code, self.secrets.pin(), code)
        token = tokens.to_token(session_expiry(self._clock.now()))
        self.secrets.save(token)
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
        """The ``InteractiveSession`` flow: no browser at Angel. The code is the one given
        (``values["totp"]``), else one from the stored TOTP seed, else the trader's answer
        to ``prompt``; the client code is checked first, before anyone types a code."""
        self.login_url()
        code = ((values or {}).get(TOTP_FIELD.name) or "").strip()
        if not code and self.secrets.totp_secret() is None and prompt is not None:
            code = (await prompt(TOTP_FIELD)).strip()
            if not code:
                raise SessionExpired(f"no {TITLE} TOTP code given; log in again")
        return await asyncio.wait_for(self.complete_login({TOTP_FIELD.name: code}), within)

    def current(self, now: datetime) -> SessionToken | None:
        return self.secrets.current(now)

    async def renew(self, now: datetime) -> SessionToken | None:
        """A fresh login from the stored seed; ``None`` when the trader must type a code."""
        if self.secrets.totp_secret() is None:
            return None
        return await self.complete_login({})

    def forget(self) -> None:
        self.secrets.forget()
