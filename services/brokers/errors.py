"""One error taxonomy for every broker: each adapter's ``errors.py`` maps onto these.

The order manager, the dialogs and the API decide what to do from the *class* (re-login,
wait and retry, look the tag up, show the refusal), never from a broker's codes, so every
adapter must map its failures here. ``str(error)`` is shown to the trader: it says what
happened and what to do, and never carries a secret. ``broker`` and ``code`` (the broker's
own error code or HTTP status) are kept for logs and metrics.

======================  =========================================  ============================
class                   meaning                                    what the terminal does
======================  =========================================  ============================
SessionExpired          the day's token is invalid or expired      prompt a login
CredentialsMissing      no API key/secret configured               name the command to set them
PermissionDenied        the app or account lacks a permission      show it; nothing to retry
IpNotAllowed            SEBI static-IP check refused the address   show it; nothing was placed
RateLimited             the broker said "too many requests"        wait retry_after s; not done
ThrottleLimited         our own throttle held the order back       show it; nothing was sent
OutcomeUnknown          the request left, no answer came back      look the tag up first
BrokerUnavailable       broker/OMS down, gateway page              placement: as OutcomeUnknown
DataError               an answer that could not be read           show it
InvalidInput            the broker refused the parameters          show it
InsufficientFunds       margin short                               show it
InsufficientHoldings    holdings short for a sell                  show it
InstrumentUnknown       key not in the broker's master             show it
NotOffered              the broker lacks that kind of request      show it; nothing was sent
CapacityExceeded        a subscription over the feed's capacity    show it; nothing subscribed
HistoryNotCovered       interval/range outside the coverage        try another provider
======================  =========================================  ============================
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from services.broker import BrokerError, OrderNotFound, OrderRejected

if TYPE_CHECKING:
    from services.brokers.ports import FeedMode

__all__ = [
    "BrokerError",
    "BrokerUnavailable",
    "CapacityExceeded",
    "CredentialsMissing",
    "DataError",
    "HistoryNotCovered",
    "InstrumentUnknown",
    "InsufficientFunds",
    "InsufficientHoldings",
    "InvalidInput",
    "IpNotAllowed",
    "NotOffered",
    "OrderNotFound",
    "OrderRejected",
    "OutcomeUnknown",
    "PermissionDenied",
    "RateLimited",
    "SessionExpired",
    "ThrottleLimited",
    "outcome_unknown",
    "unsupported_mode",
]


class _Coded:
    """``broker`` and ``code`` for logs; set after construction so subclasses keep their args."""

    broker: str = ""
    code: str = ""

    def coded(self, broker: str = "", code: str | int = "") -> _Coded:
        self.broker = broker
        self.code = str(code)
        return self


class SessionExpired(_Coded, BrokerError):
    """The access token is invalid or expired: the trader must log in again."""


class CredentialsMissing(_Coded, BrokerError):
    """No API key or secret configured for the broker."""


class PermissionDenied(_Coded, BrokerError):
    """The broker app or account lacks a permission (segment, API subscription)."""


class RateLimited(_Coded, BrokerError):
    """The broker answered "too many requests": nothing was done; retry after ``retry_after``."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BrokerUnavailable(_Coded, BrokerError):
    """The broker or its OMS is down, or answered with a gateway page."""


class OutcomeUnknown(_Coded, BrokerError):
    """The request left us but no answer came back: it may or may not have been executed."""


class DataError(_Coded, BrokerError):
    """The broker returned a response that could not be read."""


class CapacityExceeded(_Coded, BrokerError):
    """A feed subscription beyond the connection's declared capacity; nothing was subscribed."""


class HistoryNotCovered(_Coded, BrokerError):
    """The provider does not have candles of that interval for that range."""


class InvalidInput(_Coded, OrderRejected):
    """The broker refused the parameters of the request."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-input")


class InsufficientFunds(_Coded, OrderRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-margin")


class InsufficientHoldings(_Coded, OrderRejected):
    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-holding")


class IpNotAllowed(_Coded, OrderRejected):
    """SEBI's static-IP rule: the order came from an address not registered with the broker."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-static-ip")


class InstrumentUnknown(_Coded, OrderRejected):
    """The key is not in the broker's instrument master (or the master is not loaded)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="instrument")


class NotOffered(_Coded, OrderRejected):
    """The broker has no such request (an OCO GTT at Upstox): refused before anything left."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="broker-feature")


class ThrottleLimited(_Coded, OrderRejected):
    """An order held back by our own throttle; it never reached the broker."""

    def __init__(self, message: str) -> None:
        super().__init__(message, rule="throttle")


def outcome_unknown(error: BaseException) -> bool:
    """True when a failed placement may still have created an order at the broker."""
    return isinstance(error, OutcomeUnknown | BrokerUnavailable)


def unsupported_mode(broker: str, mode: FeedMode) -> BrokerError:
    """A feed mode this broker does not stream (option greeks outside Upstox): the
    subscription is refused whole, nothing is sent."""
    return BrokerError(
        f"{broker} does not stream {mode.value} data; subscribe in ltp, quote or full mode"
    )
