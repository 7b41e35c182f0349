"""Upstox's failures as the terminal's error taxonomy, with messages a trader can act on.

The SDK raises ``upstox_client.rest.ApiException`` for any non-2xx answer; its ``body`` is
the gateway's ``{"status": "error", "errors": [{"errorCode": "UDAPI...", "message"}]}``
(or an HTML page from a proxy). Transport failures escape as urllib3 exceptions
(``ReadTimeoutError``, ``ProtocolError``, ``MaxRetryError``). The mapping reads the HTTP
status, the UDAPI code and the class *name*, so it never imports the SDK.

Codes with a meaning of their own (research/wave2.md §1):

* UDAPI100050 (401) — the token is invalid or past 03:30 IST: log in again.
* UDAPI10005 (429) — too many requests; Upstox sends no Retry-After, so we suggest one second.
* UDAPI1154 — SEBI's static-IP rule: orders must come from the IP registered with Upstox.
* UDAPI1156 — the ``X-Algo-Name`` sent is not an algo registered on the account.
* UDAPI1158 — Upstox has blocked order entry in that market for API orders.
* UDAPI1161 — MCX is not enabled for API orders on the account.
* UDAPI100010 — no such order.

``OutcomeUnknown`` is the one that matters for placement: a timeout or a dropped connection
after the request left means Upstox may have the order, so it is looked up by tag first.
"""

from __future__ import annotations

import json
from typing import Any

from services.broker import BrokerError, OrderNotFound, OrderRejected
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
from services.brokers.upstox.config import BROKER

RATE_LIMIT_RETRY_AFTER = 1.0

_TRANSPORT_NAMES = frozenset(
    {
        "ReadTimeoutError",
        "TimeoutError",
        "ProtocolError",
        "RemoteDisconnected",
        "ConnectionResetError",
        "ConnectionAbortedError",
        "BrokenPipeError",
        "IncompleteRead",
        "NewConnectionError",
        "ConnectTimeoutError",
        "MaxRetryError",
        "ClientConnectorError",
        "ServerDisconnectedError",
    }
)
# Before the request left: the connection could not even be opened.
_NOT_SENT_NAMES = frozenset({"NewConnectionError", "ConnectTimeoutError", "ClientConnectorError"})

IP_HELP = (
    "Upstox accepts orders only from the static IP address registered on your account "
    "(SEBI's rule for API orders), and this machine's address is not it. Register it on "
    "account.upstox.com > My Account > Apps > your app > Static IP, or send orders through "
    "your order node on the registered VPS (docs/brokers/upstox.md)"
)


def _errors(body: Any) -> tuple[str, str]:
    """The first (errorCode, message) of an Upstox error body, or ("", "")."""
    if isinstance(body, bytes | bytearray):
        try:
            body = body.decode("utf-8", "replace")
        except Exception:
            return "", ""
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except ValueError:
            return "", ""
    if not isinstance(body, dict):
        return "", ""
    errors = body.get("errors") or []
    if errors and isinstance(errors, list) and isinstance(errors[0], dict):
        first = errors[0]
        code = str(first.get("errorCode") or first.get("error_code") or "")
        return code, str(first.get("message") or "").strip()
    return "", str(body.get("message") or "").strip()


def is_api_exception(exc: BaseException) -> bool:
    return type(exc).__name__ == "ApiException" and hasattr(exc, "status")


def is_transport_error(exc: BaseException) -> bool:
    if isinstance(exc, TimeoutError | ConnectionError):
        return True
    return any(cls.__name__ in _TRANSPORT_NAMES for cls in type(exc).__mro__)


def never_sent(exc: BaseException) -> bool:
    """True when the connection failed before the request was written (safe to retry)."""
    reason = getattr(exc, "reason", None)
    names = {cls.__name__ for cls in type(exc).__mro__}
    if reason is not None:
        names |= {cls.__name__ for cls in type(reason).__mro__}
    return bool(names & _NOT_SENT_NAMES) and not names & {"ReadTimeoutError", "ProtocolError"}


def _coded(error: BrokerError, code: str | int) -> BrokerError:
    coded = getattr(error, "coded", None)
    if coded is not None:
        coded(BROKER, code)
    return error


def map_error(exc: BaseException, action: str) -> BrokerError:
    """The ``BrokerError`` for ``exc``; ``action`` ("place order", ...) leads the message."""
    if isinstance(exc, BrokerError):
        return exc
    if is_transport_error(exc):
        if never_sent(exc):
            return _coded(
                BrokerUnavailable(f"{action}: cannot reach Upstox ({type(exc).__name__})"),
                "transport",
            )
        return _coded(
            OutcomeUnknown(
                f"{action}: no answer from Upstox ({type(exc).__name__}); the request may or "
                "may not have been carried out"
            ),
            "transport",
        )
    if not is_api_exception(exc):
        return BrokerError(f"{action}: unexpected failure: {type(exc).__name__}: {exc}")
    status = int(getattr(exc, "status", 0) or 0)
    code, message = _errors(getattr(exc, "body", None))
    said = f" ({code}: {message})" if code else (f" ({message})" if message else "")
    return _coded(_classify(action, status, code, message, said), code or status)


def _classify(action: str, status: int, code: str, message: str, said: str) -> BrokerError:
    lowered = message.lower()
    if status == 0:
        return BrokerUnavailable(f"{action}: the connection to Upstox failed{said}")
    if code == "UDAPI100050" or status == 401:
        return SessionExpired(
            f"{action}: your Upstox session has expired (tokens end at 03:30 IST) or was "
            "logged out; log in again with `dalal login upstox`"
        )
    if code == "UDAPI10005" or status == 429:
        return RateLimited(
            f"{action}: Upstox says too many requests; nothing was done, wait a second and retry",
            retry_after=RATE_LIMIT_RETRY_AFTER,
        )
    if code == "UDAPI1154":
        return IpNotAllowed(f"{action}: refused by Upstox{said}. {IP_HELP}")
    if code == "UDAPI1156":
        return InvalidInput(
            f"{action}: Upstox does not know the algo name sent with the order{said}; set "
            "upstox.algo_name in the settings to the name registered for your strategy, or "
            "leave it empty for manual orders"
        )
    if code == "UDAPI1158":
        return OrderRejected(
            f"{action}: Upstox has blocked order entry in this market for API orders{said}; "
            "nothing was placed, try again when Upstox reopens it",
            rule="broker-market-blocked",
        )
    if code == "UDAPI1161":
        return PermissionDenied(
            f"{action}: MCX is not enabled for API orders on your Upstox account{said}"
        )
    if code == "UDAPI100010" or "order not found" in lowered:
        return OrderNotFound(f"{action}: Upstox has no such order{said}")
    if code in ("UDAPI1004", "UDAPI1021", "UDAPI100011"):
        return InstrumentUnknown(f"{action}: Upstox does not know the instrument{said}")
    if "insufficient" in lowered and ("fund" in lowered or "margin" in lowered):
        return InsufficientFunds(f"{action}: insufficient funds at Upstox{said}")
    if "holding" in lowered:
        return InsufficientHoldings(f"{action}: not enough holdings to sell{said}")
    if status == 403:
        return PermissionDenied(f"{action}: Upstox refused permission{said}")
    if status >= 500:
        return BrokerUnavailable(
            f"{action}: Upstox failed (HTTP {status}){said}; the request may or may not have "
            "been carried out"
        )
    if 400 <= status < 500:
        return InvalidInput(f"{action}: Upstox rejected the request{said}")
    return DataError(f"{action}: Upstox answered HTTP {status}{said}")
