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

from services.broker import BrokerError, OrderRejected


class SessionExpired(BrokerError):
    """The access token is invalid or expired: the trader must log in to Kite again."""


class PermissionDenied(BrokerError):
    """The Kite Connect app or account lacks a permission (segment, API subscription)."""


class RateLimited(BrokerError):
    """Kite answered 429: too many requests. Nothing was done; try again a little later."""


class BrokerUnavailable(BrokerError):
    """Kite or its OMS is down or answered with a gateway page."""


class OutcomeUnknown(BrokerError):
    """The request left us but no answer came back: it may or may not have been executed."""


class DataError(BrokerError):
    """Kite returned a response the SDK could not read."""


class InvalidInput(OrderRejected):
    """Kite refused the parameters of the request."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-input")


class InsufficientFunds(OrderRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-margin")


class InsufficientHoldings(OrderRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-holding")


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


def outcome_unknown(error: BrokerError) -> bool:
    """True when a failed placement may still have created an order at Kite."""
    return isinstance(error, OutcomeUnknown | BrokerUnavailable)


def map_error(exc: BaseException, action: str) -> BrokerError:
    """Return the ``BrokerError`` for ``exc``; ``action`` ("place order", ...) leads the text."""
    if isinstance(exc, BrokerError):
        return exc
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
        return RateLimited(f"{action}: Kite says too many requests; wait a moment and retry")
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
