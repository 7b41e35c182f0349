"""Errors as RFC 9457 problem documents (``application/problem+json``), never stack traces.

Every failure a client can cause gets a status, a short title and a detail in words; anything
unexpected becomes a bare 500 whose detail points at the server log, so an attacker probing the
API learns nothing about the code. Headers that tell a client what to do next (``Allow``,
``Retry-After``, ``WWW-Authenticate``) are kept from aiohttp's own exceptions.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from http import HTTPStatus
from typing import Any

from aiohttp import web

log = logging.getLogger("dalal.http")

PROBLEM_TYPE = "application/problem+json"
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiProblem(Exception):
    """Raise from a handler to answer with a problem document."""

    def __init__(
        self,
        status: int,
        detail: str | None = None,
        *,
        title: str | None = None,
        headers: Mapping[str, str] | None = None,
        close: bool = False,
        **extra: Any,
    ) -> None:
        super().__init__(detail or title or str(status))
        self.status = status
        self.detail = detail
        self.title = title
        self.headers = dict(headers or {})
        self.close = close
        self.extra = extra

    def response(self) -> web.Response:
        resp = problem(
            self.status, self.detail, title=self.title, headers=self.headers, **self.extra
        )
        if self.close:
            resp.force_close()
        return resp


def problem(
    status: int,
    detail: str | None = None,
    *,
    title: str | None = None,
    headers: Mapping[str, str] | None = None,
    **extra: Any,
) -> web.Response:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": title or HTTPStatus(status).phrase,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update(extra)
    return web.Response(
        status=status,
        body=json.dumps(body).encode(),
        content_type=PROBLEM_TYPE,
        headers=dict(headers or {}),
    )


def _from_http_exception(exc: web.HTTPException) -> web.Response:
    default = f"{exc.status}: {exc.reason}"
    detail = exc.text if exc.text and exc.text != default else None
    headers = {h: exc.headers[h] for h in KEPT_HEADERS if h in exc.headers}
    resp = problem(exc.status, detail, headers=headers)
    if exc.status == HTTPStatus.REQUEST_ENTITY_TOO_LARGE:
        resp.force_close()  # do not read the rest of an oversized body
    return resp


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiProblem as p:
        return p.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_exception(exc)
    except Exception:
        incident = secrets.token_hex(4)
        log.exception("unhandled error %s in %s %s", incident, request.method, request.path)
        return problem(
            500, f"the server could not complete the request (incident {incident} in its log)"
        )
