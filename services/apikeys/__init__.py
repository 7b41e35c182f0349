"""API keys for the headless control API: tokens, their store, rate limits and lockout."""

from services.apikeys.lockout import AddressLockout, FailureOutcome
from services.apikeys.ratelimit import KeyRateLimiter, TokenBucket, retry_after_header
from services.apikeys.store import (
    ApiKey,
    ApiKeyStore,
    DatabaseConnection,
    Failure,
    IssuedKey,
    KeyState,
    UnknownKeyError,
    Verdict,
    parse_duration,
)
from services.apikeys.tokens import Scope, Token, parse_scopes, parse_token

__all__ = [
    "AddressLockout",
    "ApiKey",
    "ApiKeyStore",
    "DatabaseConnection",
    "Failure",
    "FailureOutcome",
    "IssuedKey",
    "KeyRateLimiter",
    "KeyState",
    "Scope",
    "Token",
    "TokenBucket",
    "UnknownKeyError",
    "Verdict",
    "parse_duration",
    "parse_scopes",
    "parse_token",
    "retry_after_header",
]
