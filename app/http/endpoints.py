"""The table of HTTP endpoints: one place that routing, authorisation and OpenAPI all read.

Keeping the scope next to the route means an endpoint cannot be added without saying who may
call it, and the OpenAPI document cannot drift from what the server enforces.
"""

from __future__ import annotations

import enum
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web
from pydantic import BaseModel

from services.apikeys import Scope


class Access(enum.Enum):
    PUBLIC = "public"  # probes: a supervisor must reach them without a secret
    LOCAL_OR_READ = "local-or-read"  # /metrics: loopback peers freely, others with a read key
    KEY = "key"  # needs a key with the endpoint's scope


@dataclass(frozen=True)
class Param:
    """A header or query parameter, documented in OpenAPI (path parameters come from the path)."""

    name: str
    location: str  # "header" or "query"
    description: str
    required: bool = False
    pattern: str | None = None
    kind: str = "string"  # or "integer"


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    operation_id: str
    summary: str
    access: Access = Access.KEY
    scope: Scope | None = None
    body: type[BaseModel] | None = None
    body_optional: bool = False
    response: type[BaseModel] | None = None
    success: int = 200
    errors: tuple[int, ...] = ()
    media_type: str = "application/json"
    tags: tuple[str, ...] = field(default=())
    params: tuple[Param, ...] = ()
    websocket: bool = False  # answers 101 Switching Protocols on success


ENDPOINTS_KEY: web.AppKey[dict[tuple[str, str], Endpoint]] = web.AppKey(
    "dalal_endpoints", dict
)


def add_endpoints(app: web.Application, endpoints: list[Endpoint]) -> None:
    table = app.setdefault(ENDPOINTS_KEY, {})
    for ep in endpoints:
        if ep.access is Access.KEY and ep.scope is None:
            raise ValueError(f"{ep.method} {ep.path}: a keyed endpoint needs a scope")
        app.router.add_route(ep.method, ep.path, ep.handler)
        table[(ep.method, ep.path)] = ep


def endpoint_for(request: web.Request) -> Endpoint | None:
    route = request.match_info.route
    resource = route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return request.app[ENDPOINTS_KEY].get((method, resource.canonical))
