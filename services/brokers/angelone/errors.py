"""Angel One's failures mapped onto the terminal's error taxonomy (services.brokers.errors).

Angel reports most failures *in the body* of an HTTP 200: ``{"status": false, "message",
"errorcode": "AB1010", "data": null}``, and smartapi-python returns that dict instead of
raising. Only a body with ``error_type`` (which Angel does not send) becomes an SDK
exception. What does escape the SDK: ``requests`` transport errors (timeouts, resets), and
``DataException`` for any answer that is not JSON, which is how Angel's gateway answers an
excess of requests: HTTP 403 with the text "Access denied because of exceeding rate limit".

So the adapter calls ``raise_for_body`` on every answer and ``map_exception`` on every
exception. Codes (research/wave2.md §1, Angel's error-code page): AG8001 invalid token,
AG8002 token expired, AG8003 token missing, AB1010 session expired -> ``SessionExpired``;
AB4008 tag too long, AB1008/AB1012 bad variety/product -> ``InvalidInput``; AB1009 symbol
not found -> ``InstrumentUnknown``; AB1013 order not found -> ``OrderNotFound``.
Messages never include request headers or tokens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.broker import BrokerError, OrderNotFound, OrderRejected
from services.brokers.angelone.config import BROKER_ID
from services.brokers.errors import (
    BrokerUnavailable,
    DataError,
    InstrumentUnknown,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidInput,
    IpNotAllowed,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    SessionExpired,
)

SESSION_CODES = frozenset({"AG8001", "AG8002", "AG8003", "AB1010"})
CREDENTIAL_CODES = frozenset({"AB1000", "AB1007", "AB1050", "AB1011"})
INPUT_CODES = frozenset({"AB4008", "AB1008", "AB1012", "AB1002", "AB2002"})
RATE_LIMIT_TEXT = "exceeding rate limit"
# Angel asks for a pause before retrying; it publishes no Retry-After. One second spans
# its per-second window.
RATE_LIMIT_RETRY_AFTER = 1.0

_TRANSPORT_NAMES = frozenset(
    {
        "Timeout",
        "ReadTimeout",
        "ConnectTimeout",
        "ConnectionError",
        "ChunkedEncodingError",
        "RemoteDisconnected",
        "ProtocolError",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
    }
)


def _coded(error: BrokerError, code: str | int) -> BrokerError:
    coded = getattr(error, "coded", None)
    if coded is not None:
        coded(BROKER_ID, code)
    return error


def is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSPORT_NAMES for cls in type(exc).__mro__)


def rate_limited(action: str) -> RateLimited:
    error = RateLimited(
        f"{action}: Angel One says too many requests (its rate limit was exceeded); nothing "
        "was done, try again in a moment",
        retry_after=RATE_LIMIT_RETRY_AFTER,
    )
    _coded(error, 403)
    return error


def from_body(body: Mapping[str, Any], action: str) -> BrokerError:
    """The error an Angel ``status: false`` body stands for."""
    code = str(body.get("errorcode") or body.get("errorCode") or "")
    message = str(body.get("message") or "no message").strip()
    lowered = message.lower()
    error: BrokerError
    if code in SESSION_CODES:
        error = SessionExpired(
            f"{action}: your Angel One session has expired ({code}); log in to Angel One again"
        )
    elif RATE_LIMIT_TEXT in lowered:
        return rate_limited(action)
    elif code in CREDENTIAL_CODES:
        error = SessionExpired(f"{action}: Angel One refused the login ({code}): {message}")
    elif code == "AB1013":
        error = OrderNotFound(f"{action}: Angel One has no such order ({code})")
    elif code == "AB1009":
        error = InstrumentUnknown(f"{action}: Angel One does not know the symbol ({code})")
    elif "whitelist" in lowered or "static ip" in lowered or "ip not" in lowered:
        error = IpNotAllowed(
            f"{action}: Angel One refused the order because it came from an IP address not "
            f"registered for API orders: {message}"
        )
    elif code in INPUT_CODES:
        error = InvalidInput(f"{action}: Angel One rejected the request ({code}): {message}")
    elif "insufficient" in lowered and ("fund" in lowered or "margin" in lowered):
        error = InsufficientFunds(f"{action}: insufficient funds at Angel One: {message}")
    elif "holding" in lowered:
        error = InsufficientHoldings(f"{action}: not enough holdings to sell: {message}")
    elif code == "AB1006" or "blocked" in lowered:
        error = PermissionDenied(f"{action}: Angel One refused permission ({code}): {message}")
    elif code in ("AB1004", "AB2001", "AB2000"):
        error = BrokerUnavailable(f"{action}: Angel One failed ({code}): {message}")
    else:
        error = OrderRejected(f"{action}: Angel One refused ({code or 'no code'}): {message}")
    return _coded(error, code)


def map_error(exc: BaseException, action: str) -> BrokerError:
    """The template's name for ``map_exception``: any failure onto the taxonomy."""
    return map_exception(exc, action)


def raise_for_body(body: Any, action: str) -> Mapping[str, Any]:
    """Return a successful body; raise the mapped error for anything else."""
    if not isinstance(body, Mapping):
        raise _coded(DataError(f"{action}: Angel One sent an answer that is not an object"), "")
    if body.get("status") is True or body.get("success") is True:
        return body
    raise from_body(body, action)


def map_exception(exc: BaseException, action: str) -> BrokerError:
    """The ``BrokerError`` for an exception raised by the SDK or ``requests`` under it."""
    if isinstance(exc, BrokerError):
        return exc
    name = type(exc).__name__
    text = str(exc)
    if RATE_LIMIT_TEXT in text.lower():
        return rate_limited(action)
    if is_transport_error(exc):
        return _coded(
            OutcomeUnknown(
                f"{action}: no answer from Angel One ({name}); the request may or may not have "
                "been carried out"
            ),
            name,
        )
    if name == "TokenException":
        return _coded(
            SessionExpired(f"{action}: your Angel One session has expired; log in again"), 403
        )
    if name == "DataException":
        return _coded(
            BrokerUnavailable(
                f"{action}: Angel One answered with something other than data (a gateway "
                "page); the request may or may not have been carried out"
            ),
            502,
        )
    if name in ("PermissionException",):
        return _coded(PermissionDenied(f"{action}: Angel One refused permission"), 403)
    if name in ("InputException",):
        return _coded(InvalidInput(f"{action}: Angel One rejected the request"), 400)
    if name in ("NetworkException", "GeneralException", "OrderException"):
        return _coded(BrokerUnavailable(f"{action}: Angel One failed ({name})"), 503)
    return BrokerError(f"{action}: unexpected failure ({name})")
