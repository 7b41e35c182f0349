"""Breeze's failures mapped onto the terminal's error taxonomy (``services.brokers.errors``).

breeze-connect has no exception classes. A refusal comes back as an ordinary answer,
``{"Success": None, "Status": <n>, "Error": "<text>"}`` (often with HTTP 200), and anything
that goes wrong inside the SDK (a timeout, a dropped connection, an HTML gateway page that is
not JSON) is re-raised as a bare ``Exception("Error in place_order(): ...")`` with the
original exception in its ``__context__`` chain. So the mapping reads the answer's ``Status``
and ``Error`` text, and for exceptions walks the chain to find the transport failure.

Texts seen from ICICI (research/wave2.md §1, Breeze-Python-SDK issues #30, #39, #144, #210):

- ``Status 5, 'Limit exceed: API call per day: '``: the 5,000-calls-a-day cap -> RateLimited
  until midnight IST;
- ``'Invalid User Details'``, ``'Session key is expired.'``, ``'Resource not available.'`` and
  ``'Invalid session.'`` (customerdetails) -> SessionExpired;
- ``Status 5, 'Authentication Fail :: Invalid Checksum.'``: the secret does not match the key
  -> PermissionDenied (logging in again with the same secret would not help);
- ``'Public Key does not exist.'``: a wrong API key -> PermissionDenied.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import datetime, time, timedelta
from typing import Any, TypeVar

import requests

from services.brokers.errors import (
    BrokerError,
    BrokerUnavailable,
    DataError,
    InstrumentUnknown,
    InsufficientFunds,
    InsufficientHoldings,
    InvalidInput,
    IpNotAllowed,
    OrderNotFound,
    OrderRejected,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
    SessionExpired,
)
from services.clock import IST, to_ist

BROKER = "breeze"

_SESSION_TEXTS = (
    "invalid user details",
    "session key is expired",
    "session expired",
    "resource not available",
    "invalid session",
    "could not authenticate credentials. please check session key",
)
_NOT_FOUND_TEXTS = ("no data found", "order not found", "invalid order")


E = TypeVar("E", bound=BrokerError)


def _coded(error: E, code: object) -> E:
    """Tag ``error`` with the broker and its raw code, for logs and metrics."""
    setattr(error, "broker", BROKER)  # noqa: B010  (declared on the taxonomy's classes)
    setattr(error, "code", str(code))  # noqa: B010
    return error


def seconds_to_midnight(now: datetime) -> float:
    """Seconds until the next IST midnight, when Breeze's daily call count starts again."""
    local = to_ist(now)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(0, 0), tzinfo=IST)
    return max(1.0, (midnight - local).total_seconds())


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def map_answer(answer: Mapping[str, Any], action: str, now: datetime) -> BrokerError:
    """The error for a Breeze answer whose ``Status`` is not 200."""
    status = answer.get("Status")
    text = str(answer.get("Error") or "").strip() or f"status {status}"
    lowered = text.lower()
    if "limit exceed" in lowered:
        if "per day" in lowered:
            return _coded(
                RateLimited(
                    f"{action}: too many API calls today: Breeze's 5,000 a day are used up; "
                    "it answers again after midnight",
                    retry_after=seconds_to_midnight(now),
                ),
                status or "",
            )
        return _coded(
            RateLimited(
                f"{action}: Breeze says too many requests ({text}); wait a moment and retry",
                retry_after=1.0,
            ),
            status or "",
        )
    if any(t in lowered for t in _SESSION_TEXTS):
        return _coded(
            SessionExpired(
                f"{action}: your Breeze session has expired or was logged out; log in to ICICI "
                "Direct again (`dalal login breeze`)"
            ),
            status or "",
        )
    if "checksum" in lowered:
        return _coded(
            PermissionDenied(
                f"{action}: Breeze refused the request signature: the API secret does not match "
                "the API key; set both again with `dalal credentials set breeze`"
            ),
            status or "",
        )
    if "public key does not exist" in lowered or "please check api key" in lowered:
        return _coded(
            PermissionDenied(
                f"{action}: Breeze does not know this API key; check it with "
                "`dalal credentials set breeze`"
            ),
            status or "",
        )
    if " ip" in f" {lowered}" and any(w in lowered for w in ("not allowed", "whitelist", "regist")):
        return IpNotAllowed(f"{action}: Breeze refused this address (SEBI static IP): {text}")
    if "insufficient" in lowered and (
        "limit" in lowered or "fund" in lowered or "margin" in lowered
    ):
        return InsufficientFunds(f"{action}: insufficient funds at ICICI: {text}")
    if "insufficient" in lowered and ("holding" in lowered or "quantity" in lowered):
        return InsufficientHoldings(f"{action}: not enough holdings to sell: {text}")
    if any(t in lowered for t in _NOT_FOUND_TEXTS):
        return OrderNotFound(f"{action}: Breeze has no such order ({text})")
    if "stock-code not found" in lowered or "stock code not found" in lowered:
        return InstrumentUnknown(f"{action}: Breeze does not know this instrument ({text})")
    if isinstance(status, int) and status >= 502:
        return _coded(BrokerUnavailable(f"{action}: Breeze failed ({text})"), status)
    if "cannot be empty" in lowered or "should be" in lowered or "multiple" in lowered:
        return InvalidInput(f"{action}: Breeze rejected the request: {text}")
    return OrderRejected(f"{action}: Breeze refused: {text}")


def map_exception(exc: BaseException, action: str) -> BrokerError:
    """The error for an exception raised by (or through) the SDK."""
    if isinstance(exc, BrokerError):
        return exc
    for link in _chain(exc):
        if isinstance(link, requests.Timeout | TimeoutError):
            return _coded(
                OutcomeUnknown(
                    f"{action}: no answer from Breeze in time; the request may or may not have "
                    "been carried out"
                ),
                "timeout",
            )
        if isinstance(link, requests.ConnectionError | ConnectionError):
            return _coded(
                OutcomeUnknown(
                    f"{action}: the connection to Breeze dropped; the request may or may not have "
                    "been carried out"
                ),
                "connection",
            )
        if isinstance(link, json.JSONDecodeError | requests.JSONDecodeError):
            return _coded(
                BrokerUnavailable(
                    f"{action}: Breeze answered with an error page instead of data; the request "
                    "may or may not have been carried out"
                ),
                "html",
            )
    text = str(exc).strip() or type(exc).__name__
    for known in _SESSION_TEXTS:
        if known in text.lower():
            return _coded(
                SessionExpired(
                    f"{action}: your Breeze session has expired; log in to ICICI Direct again"
                ),
                "session",
            )
    return _coded(DataError(f"{action}: Breeze failed unexpectedly: {text}"), type(exc).__name__)


def success(answer: Any, action: str, now: datetime) -> Any:
    """The ``Success`` part of an answer, or the mapped error raised."""
    if not isinstance(answer, Mapping):
        raise DataError(f"{action}: Breeze sent an answer that is not an object")
    if answer.get("Status") != 200:
        raise map_answer(answer, action, now)
    return answer.get("Success")
