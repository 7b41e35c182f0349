"""The OpenAPI 3.1 document, generated from the endpoint table and the pydantic models.

Generated rather than written by hand, so it lists exactly the routes, scopes and body
schemas the server enforces; the fuzz test drives the server from this document.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from typing import Any, Literal

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from app.http.endpoints import Access, Endpoint
from app.http.problems import PROBLEM_TYPE
from app.http.schemas import Problem

REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")


def _schemas(endpoints: list[Endpoint]) -> tuple[dict[Any, Any], dict[str, Any]]:
    pairs: list[tuple[type[BaseModel], Literal["validation", "serialization"]]] = [
        (Problem, "serialization")
    ]
    for ep in endpoints:
        if ep.body is not None and (ep.body, "validation") not in pairs:
            pairs.append((ep.body, "validation"))
        if ep.response is not None and (ep.response, "serialization") not in pairs:
            pairs.append((ep.response, "serialization"))
    refs, defs = models_json_schema(pairs, ref_template=REF)
    return refs, defs.get("$defs", {})


def _operation(ep: Endpoint, refs: dict[Any, Any]) -> dict[str, Any]:
    op: dict[str, Any] = {"operationId": ep.operation_id, "summary": ep.summary}
    if ep.tags:
        op["tags"] = list(ep.tags)
    if ep.access is Access.PUBLIC:
        op["security"] = []
    else:
        op["security"] = [{"bearerAuth": []}]
        if ep.scope is not None:
            op["description"] = f"Needs an API key with the `{ep.scope.value}` scope." + (
                " Loopback clients need no key." if ep.access is Access.LOCAL_OR_READ else ""
            )
    params = [
        {"name": name, "in": "path", "required": True,
         "schema": {"type": "string", "minLength": 1, "maxLength": 64}}
        for name in _PATH_PARAM.findall(ep.path)
    ]  # fmt: skip
    for param in ep.params:
        schema: dict[str, Any] = {"type": param.kind}
        if param.kind == "string":
            schema.update(minLength=1, maxLength=128)
        else:
            schema.update(minimum=0)
        if param.pattern is not None:
            schema["pattern"] = param.pattern
        params.append({"name": param.name, "in": param.location, "required": param.required,
                       "description": param.description, "schema": schema})
    if params:
        op["parameters"] = params
    if ep.body is not None:
        op["requestBody"] = {
            "required": not ep.body_optional,
            "content": {"application/json": {"schema": refs[(ep.body, "validation")]}},
        }
    success: dict[str, Any] = {"description": HTTPStatus(ep.success).phrase}
    if ep.websocket:
        pass  # the messages are described in the operation's description
    elif ep.response is not None:
        success["content"] = {ep.media_type: {"schema": refs[(ep.response, "serialization")]}}
    elif ep.media_type != "application/json":
        success["content"] = {ep.media_type: {"schema": {"type": "string"}}}
    else:
        success["content"] = {ep.media_type: {"schema": {"type": "object"}}}
    responses: dict[str, Any] = {str(ep.success): success}
    problem_ref = refs[(Problem, "serialization")]
    for status in ep.errors:
        responses[str(status)] = {
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_TYPE: {"schema": problem_ref}},
        }
    op["responses"] = responses
    return op


def openapi_document(
    endpoints: list[Endpoint], *, version: str, title: str = "Dalal Terminal control API"
) -> dict[str, Any]:
    refs, defs = _schemas(endpoints)
    paths: dict[str, dict[str, Any]] = {}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(ep, refs)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": title,
            "version": version,
            "description": "Headless control API. Keys are sent as `Authorization: Bearer "
            "dk_<id>_<secret>`; no cookies are used. Errors are RFC 9457 problem documents.",
        },
        "paths": paths,
        "components": {
            "schemas": defs,
            "securitySchemes": {
                "bearerAuth": {
                    "type": "http",
                    "scheme": "bearer",
                    "bearerFormat": "dk_<id>_<secret>",
                }
            },
        },
    }
