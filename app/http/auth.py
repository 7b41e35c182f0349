"""Authentication, authorisation and rate limiting for the control API.

The order of checks is deliberate:

1. an address under a failed-authentication block is answered 429 with ``Retry-After``
   before its credential is read (429 rather than 403: the refusal is temporary and says when
   to come back; the block is per address, so a client behind the same NAT waits too);
2. a missing credential is 401 and does not count towards a block (it is a misconfigured
   client, not a guess); a malformed, unknown, wrong, expired or revoked one is 401, counts,
   and is a security event in the audit log;
3. the key's own token bucket: 429 with ``Retry-After``;
4. the endpoint's scope: 403.

``/metrics`` answers a loopback peer without a key (Prometheus on the same host), unless the
request carries ``Forwarded``, ``X-Forwarded-For`` or ``X-Real-IP``: those mean a reverse proxy
on the same host relayed it from somewhere else, so it is treated as remote and needs a read
key. ``metrics_require_key`` (``--metrics-require-key``) asks for a key always.

Key verification may query the database (a cache miss) and runs on the guard's single-thread
executor, never on the event loop; audit functions must not block (they queue the write).

Credentials travel only in the ``Authorization: Bearer`` header. The API sets no cookies and
reads none, so a browser never attaches a credential on its own and cross-site request forgery
has nothing to ride on.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import logging
import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from aiohttp import web

from app.http.endpoints import Access, endpoint_for
from app.http.problems import ApiProblem, Handler
from services.apikeys import (
    AddressLockout,
    ApiKey,
    Failure,
    KeyRateLimiter,
    KeyState,
    Verdict,
    retry_after_header,
)
from services.metrics import Metrics

log = logging.getLogger("dalal.http.auth")

REALM = 'Bearer realm="dalal"'

AuditFn = Callable[[str, str, Mapping[str, Any]], object]


class KeyVerifier(Protocol):
    def verify(self, presented: str | None) -> Verdict: ...
    def flush_last_used(self) -> int: ...


def log_audit(kind: str, actor: str, details: Mapping[str, Any]) -> None:
    log.warning("security event %s by %s: %s", kind, actor, dict(details))


@dataclass
class Guard:
    """Everything the auth middleware consults; one per application."""

    keys: KeyVerifier
    metrics: Metrics
    limiter: KeyRateLimiter = field(default_factory=KeyRateLimiter)
    lockout: AddressLockout = field(default_factory=AddressLockout)
    audit: AuditFn = log_audit
    metrics_require_key: bool = False
    # One thread: the key store is not shared between threads, and its queries queue here.
    executor: Executor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="dalal-auth")
    )

    # Keys verified in the last ``cache_seconds``, by a hash of the presented token: most
    # requests are then checked on the loop, without the hop to the key store's thread.
    # As short as the store's own cache, so a revoked key stops working as soon as before.
    cache_seconds: float = 1.0
    _verified: dict[bytes, tuple[ApiKey, float]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.metrics.watch_blocked_addresses(self.lockout.blocked_count)

    def cached(self, presented: str | None) -> ApiKey | None:
        if not presented or self.cache_seconds <= 0:
            return None
        hit = self._verified.get(hashlib.sha256(presented.encode()).digest())
        if hit is None:
            return None
        key, until = hit
        if time.monotonic() >= until or key.state(datetime.now(UTC)) is not KeyState.ACTIVE:
            return None
        return key

    def remember(self, presented: str | None, key: ApiKey) -> None:
        if not presented or self.cache_seconds <= 0:
            return
        if len(self._verified) > 1024:
            self._verified.clear()  # bounded: a flood of distinct valid keys is not a cache
        digest = hashlib.sha256(presented.encode()).digest()
        self._verified[digest] = (key, time.monotonic() + self.cache_seconds)


GUARD_KEY: web.AppKey[Guard] = web.AppKey("dalal_guard", Guard)
API_KEY: web.RequestKey[ApiKey] = web.RequestKey("dalal_api_key", ApiKey)


def is_loopback_peer(request: web.Request) -> bool:
    remote = request.remote
    if not remote:
        return False
    try:
        return ipaddress.ip_address(remote).is_loopback
    except ValueError:
        return False  # a unix socket or something we cannot place: not trusted


PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")


def is_proxied(request: web.Request) -> bool:
    """A reverse proxy relayed the request: its loopback address says nothing of the client."""
    return any(name in request.headers for name in PROXY_HEADERS)


def bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "bearer":
        return "<not a bearer token>"  # present but unusable: a failure, not a missing key
    return value.strip()


def _unauthorized(detail: str, *, error: str | None = None) -> ApiProblem:
    challenge = REALM if error is None else f'{REALM}, error="{error}"'
    return ApiProblem(401, detail, headers={"WWW-Authenticate": challenge})


async def authenticate(request: web.Request, guard: Guard) -> ApiKey:
    """Return the request's key or raise the problem to answer with."""
    address = request.remote or "unknown"
    if not getattr(guard.keys, "available", True):
        # Our own misconfiguration (no key store open), not the client's guess: never a 401,
        # never a failure toward the address block.
        guard.metrics.auth_failures.labels(reason="no_key_store").inc()
        raise ApiProblem(
            503,
            "the server has no API key store open (it runs without its profile database); "
            "restart it with the profile's key (--key-fd, a systemd credential, or the "
            "passphrase on a terminal)",
            headers={"Retry-After": "60"},
        )
    blocked = guard.lockout.retry_after(address)
    if blocked > 0:
        guard.metrics.rate_limited.labels(cause="address_blocked").inc()
        raise ApiProblem(
            429,
            "too many failed authentication attempts from this address",
            headers={"Retry-After": retry_after_header(blocked)},
        )
    presented = bearer(request)
    cached = guard.cached(presented)
    if cached is not None:
        return cached
    loop = asyncio.get_running_loop()
    verdict = await loop.run_in_executor(guard.executor, guard.keys.verify, presented)
    if verdict.key is not None:
        guard.lockout.success(address)
        guard.remember(presented, verdict.key)
        return verdict.key
    failure = verdict.failure or Failure.MALFORMED
    guard.metrics.auth_failures.labels(reason=failure.value).inc()
    if failure is Failure.MISSING:
        raise _unauthorized("this endpoint needs an API key: Authorization: Bearer dk_...")
    outcome = guard.lockout.failure(address)
    details = {
        "address": address,
        "reason": failure.value,
        "key_id": verdict.key_id,
        "method": request.method,
        "path": request.path,
        "failures_in_window": outcome.failures,
    }
    guard.audit("api.auth_failure", f"address:{address}", details)
    if outcome.blocked_for > 0:
        guard.metrics.address_blocks.inc()
        guard.audit(
            "api.address_blocked",
            f"address:{address}",
            {"address": address, "seconds": outcome.blocked_for},
        )
        log.warning("blocked %s for %.0f s after failed authentication", address,
                    outcome.blocked_for)  # fmt: skip
    # The client learns that the key did not work, never which check failed.
    raise _unauthorized("the API key is not valid", error="invalid_token")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = endpoint_for(request)
    if endpoint is None or endpoint.access is Access.PUBLIC:
        return await handler(request)
    guard = request.app[GUARD_KEY]
    if (
        endpoint.access is Access.LOCAL_OR_READ
        and not guard.metrics_require_key
        and is_loopback_peer(request)
        and not is_proxied(request)
    ):
        return await handler(request)
    key = await authenticate(request, guard)
    wait = guard.limiter.check(key.key_id)
    if wait > 0:
        guard.metrics.rate_limited.labels(cause="key_rate").inc()
        raise ApiProblem(
            429,
            f"rate limit of {guard.limiter.rate:g} requests/s for this key exceeded",
            headers={"Retry-After": retry_after_header(wait)},
        )
    needed = endpoint.scope
    if needed is not None and needed not in key.scopes:
        raise ApiProblem(
            403,
            f"this key lacks the {needed.value!r} scope",
            headers={"WWW-Authenticate": f'{REALM}, error="insufficient_scope", '
                     f'scope="{needed.value}"'},
        )  # fmt: skip
    request[API_KEY] = key
    return await handler(request)
