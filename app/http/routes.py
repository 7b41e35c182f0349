"""aiohttp routes for probes and metrics.

The probes follow the Kubernetes convention: ``/livez`` (and its older alias ``/healthz``)
answers 200 whenever the process and its event loop can answer at all, and never checks
dependencies, so a supervisor does not restart the process because the exchange is down.
``/readyz`` lists every component and answers 503 while a required one is not ready or the
process is shutting down, so a load balancer or monitor stops relying on it. Machines act on
the status code; the JSON body is for people.

The authenticated control API of the secured headless issue will be added as further route
tables on the same application, behind its own middlewares; these probe routes stay open.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from aiohttp import web

from services.health import Readiness
from services.metrics import Metrics

JSON_TYPE = "application/json"


@dataclass
class ProbeContext:
    """What the probe routes read; one per application."""

    metrics: Metrics
    readiness: Readiness
    version: str = "unknown"
    started_monotonic: float = field(default_factory=time.monotonic)


CONTEXT: web.AppKey[ProbeContext] = web.AppKey("dalal_probe_context", ProbeContext)


async def livez(request: web.Request) -> web.Response:
    ctx = request.app[CONTEXT]
    return web.json_response(
        {
            "status": "ok",
            "version": ctx.version,
            "uptime_seconds": round(time.monotonic() - ctx.started_monotonic, 3),
        }
    )


async def readyz(request: web.Request) -> web.Response:
    report = request.app[CONTEXT].readiness.report()
    return web.json_response(report.to_json(), status=200 if report.ready else 503)


async def metrics(request: web.Request) -> web.Response:
    body, content_type = request.app[CONTEXT].metrics.exposition(request.headers.get("Accept"))
    return web.Response(body=body, headers={"Content-Type": content_type})


def add_probe_routes(app: web.Application, ctx: ProbeContext) -> None:
    app[CONTEXT] = ctx
    app.router.add_get("/livez", livez)
    app.router.add_get("/healthz", livez)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)


def build_app(ctx: ProbeContext) -> web.Application:
    """Return the headless application with the probe routes.

    The body limit is small because no route takes a body yet; the control API will set its
    own per-route limits.
    """
    app = web.Application(client_max_size=64 * 1024)
    add_probe_routes(app, ctx)
    return app
