"""API key tokens: ``dk_<id>_<secret>``, of which only a hash of the secret is ever stored.

The id is public (it names the key in lists, logs and the audit log); the secret is 256 random
bits. Because the secret is uniformly random and long, one SHA-256 is enough: a slow password
hash protects guessable human secrets, and nothing here is guessable. Comparison is constant
time so the answer's timing says nothing about how much of a guess was right.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

PREFIX = "dk"
ID_HEX_CHARS = 12
SECRET_BYTES = 32  # 256 bits

_TOKEN = re.compile(rf"^{PREFIX}_([0-9a-f]{{{ID_HEX_CHARS}}})_([A-Za-z0-9_-]{{43}})$")


class Scope(enum.StrEnum):
    """What a key may do: read state, trade (orders, kill switch), manage models."""

    READ = "read"
    TRADE = "trade"
    MODELS = "models"


def parse_scopes(text: str) -> frozenset[Scope]:
    """Parse ``read,trade``; raise ``ValueError`` naming an unknown scope."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ValueError("at least one scope is needed (read, trade, models)")
    scopes = set()
    for name in names:
        try:
            scopes.add(Scope(name))
        except ValueError:
            raise ValueError(f"unknown scope {name!r}: use read, trade or models") from None
    return frozenset(scopes)


@dataclass(frozen=True, slots=True)
class Token:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:  # never print the secret by accident
        return f"Token(key_id={self.key_id!r}, secret=<hidden>)"


def new_token() -> Token:
    return Token(secrets.token_hex(ID_HEX_CHARS // 2), secrets.token_urlsafe(SECRET_BYTES))


def parse_token(text: str) -> Token | None:
    """Return the token's parts, or ``None`` when ``text`` is not shaped like one of our keys."""
    match = _TOKEN.match(text)
    if match is None:
        return None
    return Token(match.group(1), match.group(2))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def secret_matches(secret: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), stored_hash)
