"""``POST /v1/session/{broker}``: the desktop hands the node the day's broker token.

The trader logs in once a day on the desktop (the interactive 2FA login needs a browser and a
person; login is not an order call, so it works from the home IP), then the desktop gives the
token to the node, which stores it in its encrypted profile and resumes trading with it. The
token is never logged, audited or echoed: the audit log records that it was handed over, by
which key, for which broker.
"""

from __future__ import annotations

from typing import Annotated

from aiohttp import web
from pydantic import BaseModel, StringConstraints

from app.http.context import API_CONTEXT, audit, json_response, request_body
from app.http.problems import ApiProblem
from services.broker import BrokerError


class SessionBody(BaseModel):
    model_config = {"extra": "forbid", "frozen": True}

    access_token: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._~+/=-]{8,512}$")]


class SessionOut(BaseModel):
    broker: str
    state: str


async def post_session(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    broker = request.match_info["broker"]
    handover = ctx.node.session_handover
    if handover is None or broker != ctx.node.session_broker:
        trades = ctx.node.session_broker or "no broker that takes a token"
        raise ApiProblem(404, f"this node trades through {trades}, not {broker!r}")
    body = await request_body(request, SessionBody)
    try:
        await handover(body.access_token)
    except BrokerError as e:
        raise ApiProblem(409, f"the token was not taken: {e}") from None
    audit(request, "api.session_handover", {"broker": broker})
    return json_response(SessionOut(broker=broker, state="valid"))
