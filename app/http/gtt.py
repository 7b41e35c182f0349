"""``/v1/gtts``: GTT orders placed, listed and cancelled on the order node.

SEBI's static-IP rule covers GTTs like orders, and a GTT is only worth having if it fires
while the trader's desktop is shut: so a desktop trading through a node keeps its GTTs here.
The node holds them where its own venue does: at the broker (Kite, Upstox: they fire with
the node down too) or in the node's GTT book (paper; kept in the node's profile). Handlers
call the same facade the desktop's GTT panel uses, so the same checks apply.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any

from aiohttp import web
from pydantic import BaseModel, Field

from app.http.context import (
    API_CONTEXT,
    ApiContext,
    GttFacade,
    broker_problem,
    json_response,
    read_body,
    request_actor,
)
from app.http.endpoints import Endpoint
from app.http.problems import ApiProblem
from app.http.schemas import DecimalString, OrderBody, _Request
from services.apikeys import Scope
from services.broker import BrokerError, OrderRejected
from services.brokers.errors import InvalidInput, IpNotAllowed, NotOffered
from services.gtt import Gtt, GttError, GttNotFound, LegChange, gtt_to_dict
from services.validation import OrderValidationError

# -- bodies ----------------------------------------------------------------------------------


class GttLegBody(_Request):
    trigger: DecimalString
    order: OrderBody


class GttBody(_Request):
    """One leg: a single GTT. Two: an OCO, the stop (below the price) first, the target second."""

    legs: Annotated[list[GttLegBody], Field(min_length=1, max_length=2)]


class GttLegChangeBody(_Request):
    trigger: DecimalString
    price: DecimalString | None = Field(
        default=None, description="the leg's new limit price; absent: unchanged")


class GttChangeBody(_Request):
    """A new trigger (and limit price) for each leg, in the GTT's own leg order."""

    legs: Annotated[list[GttLegChangeBody], Field(min_length=1, max_length=2)]


class GttLegOut(BaseModel):
    trigger: str
    rising: bool = Field(description="fires when the price reaches the trigger from below")
    order: dict[str, Any]


class GttOut(BaseModel):
    gtt_id: int | str
    key: str
    kind: str
    legs: list[GttLegOut]
    created_at: str
    status: str
    fired_leg: int | None
    order_id: str | None
    message: str

    @classmethod
    def of(cls, gtt: Gtt) -> GttOut:
        return cls.model_validate(gtt_to_dict(gtt))


class GttList(BaseModel):
    held_at: str | None = Field(
        description="the broker holding the node's GTTs (they fire with the node down), or "
        "null: the node's own book")
    oco: bool = Field(description="whether two-leg (OCO) GTTs are offered")
    gtts: list[GttOut]


# -- handlers --------------------------------------------------------------------------------


def _facade(request: web.Request) -> GttFacade:
    gtts = request.app[API_CONTEXT].gtts
    if gtts is None:
        raise ApiProblem(404, "this server offers no GTT orders")
    return gtts


def _problem(
    ctx: ApiContext, e: GttError | BrokerError | OrderValidationError, *, refused: int = 422
) -> ApiProblem:
    """``refused``: the status of a GTT this request cannot act on (409 for a cancel: it is
    no longer active; 422 for a place or a move checked as a new GTT)."""
    if isinstance(e, GttNotFound):
        return ApiProblem(404, str(e))
    if isinstance(e, GttError):
        return ApiProblem(refused, str(e))
    if isinstance(e, (InvalidInput, OrderValidationError)):
        return ApiProblem(422, str(e))
    if isinstance(e, NotOffered):
        return ApiProblem(409, str(e), title="Not offered", rule="not_offered")
    if isinstance(e, OrderRejected) and not isinstance(e, IpNotAllowed):
        return ApiProblem(409, str(e), title="Refused", rule=e.rule)
    return broker_problem(ctx, e, "GTT")  # "IP not allowed" names the address to register


async def get_gtts(request: web.Request) -> web.Response:
    gtts = _facade(request)
    try:
        listed = await gtts.gtt_list()
    except BrokerError as e:
        raise ApiProblem(502, f"the broker did not list its GTTs: {e}") from None
    return json_response(GttList(held_at=gtts.gtt_held_at(), oco=gtts.gtt_offers_oco(),
                                 gtts=[GttOut.of(g) for g in listed]))  # fmt: skip


async def post_gtt(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    gtts = _facade(request)
    body = await read_body(request, GttBody, read_timeout=ctx.body_timeout)
    legs = [(leg.trigger, leg.order.to_request()) for leg in body.legs]
    try:
        if len(legs) == 1:
            (trigger, order), = legs
            gtt = await gtts.place_gtt_single(Decimal(trigger), order)
        else:
            (stop, stop_order), (target, target_order) = legs
            gtt = await gtts.place_gtt_oco(Decimal(stop), stop_order, Decimal(target), target_order)
    except (GttError, BrokerError, OrderValidationError) as e:
        raise _problem(ctx, e) from None
    ctx.audit("api.gtt_placed", request_actor(request),
              {"gtt_id": str(gtt.gtt_id), "key": gtt.key, "kind": gtt.kind.value})  # fmt: skip
    return json_response(GttOut.of(gtt), status=201)


def _gtt_id(request: web.Request) -> int | str:
    raw = request.match_info["gtt_id"]
    if not GTT_ID.fullmatch(raw):
        raise ApiProblem(404, f"no GTT {raw[:70]!r}")
    return int(raw) if raw.isdigit() else raw  # the book's and Kite's are numbers


async def patch_gtt(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    gtts = _facade(request)
    gtt_id = _gtt_id(request)
    body = await read_body(request, GttChangeBody, read_timeout=ctx.body_timeout)
    changes = [
        LegChange(Decimal(leg.trigger), None if leg.price is None else Decimal(leg.price))
        for leg in body.legs
    ]
    try:
        gtt = await gtts.modify_gtt(gtt_id, changes)
    except (GttError, BrokerError) as e:
        raise _problem(ctx, e) from None
    ctx.audit("api.gtt_modified", request_actor(request),
              {"gtt_id": str(gtt_id), "triggers": [leg.trigger for leg in body.legs]})
    return json_response(GttOut.of(gtt))


async def delete_gtt(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    gtts = _facade(request)
    gtt_id = _gtt_id(request)
    try:
        gtt = await gtts.cancel_gtt(gtt_id)
    except (GttError, BrokerError) as e:
        raise _problem(ctx, e, refused=409) from None
    ctx.audit("api.gtt_cancelled", request_actor(request), {"gtt_id": str(gtt_id)})
    return json_response(GttOut.of(gtt))


GTT_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # the book's and Kite's numbers, Upstox's text
GTT_ERRORS = (400, 401, 403, 408, 409, 413, 415, 422, 429, 502)

GTT_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/v1/gtts", get_gtts, "listGtts",
             "GTT orders and where they are held (the broker, or the node's own book)",
             scope=Scope.READ, response=GttList, errors=(401, 403, 404, 429, 502),
             tags=("read",)),
    Endpoint("POST", "/v1/gtts", post_gtt, "placeGtt",
             "Place a GTT: one leg (single) or two (OCO: the stop below the price, then the "
             "target above); its order is validated and risk-checked when it fires",
             scope=Scope.TRADE, body=GttBody, response=GttOut, success=201,
             errors=(*GTT_ERRORS, 404), tags=("trade",)),
    Endpoint("PATCH", "/v1/gtts/{gtt_id}", patch_gtt, "modifyGtt",
             "Move an active GTT's triggers (and limit prices) in place, checked as a new "
             "GTT would be", scope=Scope.TRADE, body=GttChangeBody, response=GttOut,
             errors=(*GTT_ERRORS, 404), tags=("trade",)),
    Endpoint("DELETE", "/v1/gtts/{gtt_id}", delete_gtt, "cancelGtt", "Cancel an active GTT",
             scope=Scope.TRADE, response=GttOut, errors=(401, 403, 404, 409, 429, 502),
             tags=("trade",)),
]
