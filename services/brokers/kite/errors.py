"""Kite's failures turned into ``BrokerError`` subclasses with messages a trader can act on.

kiteconnect raises one exception class per ``error_type`` it knows; the server also sends
``MarginException``, ``HoldingException`` and ``UserException``, which the SDK does not define
and raises as ``GeneralException`` carrying the real HTTP code. A gateway error page (HTML)
becomes a ``DataException`` about an unknown Content-Type, and transport failures escape as
``requests`` exceptions. So the mapping looks at the class *name*, the HTTP code and the
message, never only at the class, and it never imports the SDK.

The important distinction for the order path is ``OutcomeUnknown``: the request may or may
not have reached Kite's OMS, so a placement must be looked up by its tag before any retry.
"""

from __future__ import annotations

from services.brokers.errors import (
    BrokerError,
    BrokerUnavailable,
    DataError,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidInput,
    IpNotAllowed,
    OrderRejected,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    SessionExpired,
    outcome_unknown,
)

__all__ = [
    "BrokerUnavailable",
    "DataError",
    "InsufficientFunds",
    "InsufficientHoldings",
    "InvalidInput",
    "IpNotAllowed",
    "OutcomeUnknown",
    "PermissionDenied",
    "RateLimited",
    "SessionExpired",
    "is_kite_exception",
    "is_transport_error",
    "map_error",
    "outcome_unknown",
]

BROKER = "kite"


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
_SDK_NAMES = frozenset(
    {
        "KiteException",
        "GeneralException",
        "TokenException",
        "PermissionException",
        "OrderException",
        "InputException",
        "DataException",
        "NetworkException",
    }
)


def is_kite_exception(exc: BaseException) -> bool:
    return any(cls.__name__ in _SDK_NAMES for cls in type(exc).__mro__)


def is_transport_error(exc: BaseException) -> bool:
    """True for timeouts and dropped connections (requests/urllib3/socket level)."""
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSPORT_NAMES for cls in type(exc).__mro__)


def map_error(exc: BaseException, action: str) -> BrokerError:
    """Return the ``BrokerError`` for ``exc``; ``action`` ("place order", ...) leads the text."""
    if isinstance(exc, BrokerError):
        return exc
    error = _map(exc, action)
    coded = getattr(error, "coded", None)
    if coded is not None:
        coded(BROKER, getattr(exc, "code", "") or type(exc).__name__)
    return error


def _map(exc: BaseException, action: str) -> BrokerError:
    text = str(exc).strip() or type(exc).__name__
    if is_transport_error(exc):
        return OutcomeUnknown(
            f"{action}: no answer from Kite ({type(exc).__name__}); the request may or may "
            "not have been carried out"
        )
    if not is_kite_exception(exc):
        return BrokerError(f"{action}: unexpected failure: {text}")
    name = type(exc).__name__
    code = int(getattr(exc, "code", 500) or 500)
    lowered = text.lower()
    if name == "TokenException":
        return SessionExpired(
            f"{action}: your Kite session has expired or was logged out; log in to Kite again"
        )
    if code == 429 or "too many requests" in lowered:
        # Kite sends no Retry-After; its windows are one second long.
        return RateLimited(
            f"{action}: Kite says too many requests; wait a moment and retry", retry_after=1.0
        )
    if "static ip" in lowered or ("ip address" in lowered and "not" in lowered):
        return IpNotAllowed(
            f"{action}: Kite refused the order because it did not come from the static IP "
            f"address registered for this app (SEBI rule): {text}"
        )
    if name == "PermissionException":
        return PermissionDenied(f"{action}: Kite refused permission: {text}")
    if name == "InputException":
        return InvalidInput(f"{action}: Kite rejected the request: {text}")
    if name == "DataException":
        if "content-type" in lowered:
            return BrokerUnavailable(
                f"{action}: Kite answered with an error page instead of data (HTTP gateway "
                "problem); the request may or may not have been carried out"
            )
        return DataError(f"{action}: Kite sent a response that could not be read: {text}")
    if "margin" in lowered or "insufficient funds" in lowered:
        return InsufficientFunds(f"{action}: insufficient funds: {text}")
    if "holding" in lowered:
        return InsufficientHoldings(f"{action}: not enough holdings to sell: {text}")
    if name == "NetworkException":
        return BrokerUnavailable(
            f"{action}: Kite cannot reach the exchange's order system right now: {text}"
        )
    if name == "OrderException":
        return OrderRejected(f"{action}: Kite rejected the order: {text}")
    if code >= 500:
        return BrokerUnavailable(f"{action}: Kite failed (HTTP {code}): {text}")
    if 400 <= code < 500:
        return OrderRejected(f"{action}: Kite refused: {text}")
    return BrokerError(f"{action}: Kite error: {text}")
