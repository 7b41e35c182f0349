"""The control application: probes, metrics and the ``/v1`` API behind one set of middlewares.

Limits against bad traffic, all measured from the outside in tests:

* bodies over 64 KiB are refused with 413 before they are buffered (``client_max_size``);
* a connection must deliver a complete request head within ``header_timeout`` of connecting
  (or of its previous answer): aiohttp's keep-alive timer starts when the connection opens and
  is not extended by partial data, so a slowloris client dripping header bytes is dropped;
* a body must arrive within ``body_timeout`` or the request is answered 408 and closed;
* every handler runs with the request's own task, so one slow client never holds another.

Non-loopback listeners need TLS 1.3 (``tls_context``); a reverse proxy in front is also fine.
"""

from __future__ import annotations

import ssl
import time
from pathlib import Path
from typing import Any

from aiohttp import web

from app.http.api import API_CONTEXT, API_ENDPOINTS, ApiContext
from app.http.auth import GUARD_KEY, Guard, auth_middleware
from app.http.endpoints import Access, Endpoint, add_endpoints, endpoint_for
from app.http.openapi import openapi_document
from app.http.problems import Handler, problem_middleware
from app.http.routes import CONTEXT, ProbeContext, livez, metrics, readyz
from services.apikeys import Scope

BODY_LIMIT = 64 * 1024
HEADER_TIMEOUT = 10.0

OPENAPI_KEY: web.AppKey[dict[str, Any]] = web.AppKey("dalal_openapi", dict)


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(request.app[OPENAPI_KEY])


PROBE_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/livez", livez, "livez", "Process alive (never checks dependencies)",
             access=Access.PUBLIC, tags=("probes",)),
    Endpoint("GET", "/healthz", livez, "healthz", "Alias of /livez", access=Access.PUBLIC,
             tags=("probes",)),
    Endpoint("GET", "/readyz", readyz, "readyz", "Readiness of every component (503 if not)",
             access=Access.PUBLIC, errors=(503,), tags=("probes",)),
    Endpoint("GET", "/metrics", metrics, "metrics", "Prometheus exposition",
             access=Access.LOCAL_OR_READ, scope=Scope.READ, media_type="text/plain",
             errors=(401, 403, 429), tags=("probes",)),
    Endpoint("GET", "/openapi.json", openapi_json, "openapi", "This document",
             access=Access.PUBLIC, tags=("probes",)),
]  # fmt: skip


@web.middleware
async def metrics_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    response = await handler(request)  # the problem middleware inside turns errors into answers
    endpoint = endpoint_for(request)
    label = endpoint.path if endpoint is not None else "unmatched"
    m = request.app[CONTEXT].metrics
    m.http_requests.labels(handler=label, method=request.method, code=str(response.status)).inc()
    m.http_duration.labels(handler=label).observe(time.perf_counter() - started)
    return response


@web.middleware
async def no_cache_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    response.headers.setdefault("Cache-Control", "no-store")
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response


def build_control_app(
    probe: ProbeContext, api: ApiContext, guard: Guard, *, body_limit: int = BODY_LIMIT
) -> web.Application:
    app = web.Application(
        client_max_size=body_limit,
        middlewares=[metrics_middleware, no_cache_middleware, problem_middleware, auth_middleware],
    )
    app[CONTEXT] = probe
    app[API_CONTEXT] = api
    app[GUARD_KEY] = guard
    endpoints = PROBE_ENDPOINTS + API_ENDPOINTS
    add_endpoints(app, endpoints)
    app[OPENAPI_KEY] = openapi_document(endpoints, version=probe.version)
    return app


def runner_options(header_timeout: float = HEADER_TIMEOUT) -> dict[str, Any]:
    """Keyword arguments for ``web.AppRunner`` that bound how long a connection may idle."""
    return {
        "access_log": None,  # probes every few seconds would drown the log
        "shutdown_timeout": 5.0,
        "keepalive_timeout": header_timeout,
        "max_line_size": 8190,
        "max_field_size": 8190,
    }


def tls_context(cert: Path, key: Path) -> ssl.SSLContext:
    """A server context that speaks TLS 1.3 only; raises ``OSError``/``ssl.SSLError`` early."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_3
    context.load_cert_chain(cert, key)
    return context
