"""The ``/v1`` control API: positions, orders and funds to read; orders and the kill switch.

Handlers are thin: they validate the body, call the same service facade the desktop uses (so
an API order goes through exactly the validation and risk checks a ticket order does), and
turn the services' refusals into problem documents that name the field or the rule.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import replace
from typing import Any

from aiohttp import web

from app.http.auth import API_KEY
from app.http.context import (
    API_CONTEXT,
    ApiContext,
    KillSwitchPort,
    TradingFacade,
    broker_problem,
    json_response,
    read_body,
    request_actor,
)
from app.http.deployment import DEPLOYMENT_ENDPOINTS
from app.http.endpoints import Endpoint, Param
from app.http.gtt import GTT_ENDPOINTS
from app.http.problems import PROBLEM_TYPE, ApiProblem
from app.http.schemas import (
    FundsOut,
    KeyInfoOut,
    KillSwitchBody,
    KillSwitchOut,
    OrderBody,
    OrderChangeBody,
    OrderList,
    OrderOut,
    PositionList,
    PositionOut,
    ResumeBody,
    TradingStateOut,
)
from app.http.session import SessionBody, SessionOut, post_session
from app.http.stream import get_stream
from services.apikeys import Scope
from services.broker import BrokerError, OrderNotFound, OrderRejected
from services.brokers.errors import IpNotAllowed
from services.node.idempotency import IdempotencyConflict, Outcome
from services.node.sebi import with_market_protection
from services.risk import TradingState
from services.risk.state import StateTransitionError
from services.validation import OrderValidationError

__all__ = ["API_CONTEXT", "API_ENDPOINTS", "ApiContext", "KillSwitchPort", "TradingFacade"]


# -- handlers -----------------------------------------------------------------------------


async def get_positions(request: web.Request) -> web.Response:
    trading = request.app[API_CONTEXT].trading
    positions = [PositionOut.of(p) for p in trading.position_list()]
    return json_response(PositionList(positions=positions))


async def get_orders(request: web.Request) -> web.Response:
    trading = request.app[API_CONTEXT].trading
    return json_response(OrderList(orders=[OrderOut.of(o) for o in trading.order_list()]))


async def get_funds(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    funds = ctx.trading.funds()
    if funds is None and ctx.fetch_funds is not None:
        try:
            funds = await ctx.fetch_funds()
        except BrokerError as e:
            raise ApiProblem(502, f"the broker did not report funds: {e}") from None
    if funds is None:
        raise ApiProblem(503, "funds are not known yet: the broker has not reported them",
                         headers={"Retry-After": "1"})  # fmt: skip
    return json_response(FundsOut.of(funds))


IDEMPOTENCY_HEADER = "Idempotency-Key"
IDEMPOTENCY_PATTERN = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")
REPLAYED_HEADER = "Idempotent-Replayed"


def _problem_outcome(problem: ApiProblem) -> Outcome:
    response = problem.response()
    assert isinstance(response.body, bytes)
    return Outcome(problem.status, response.body.decode())


def _ip_not_allowed(e: BrokerError) -> bool:
    return isinstance(e, IpNotAllowed)


async def _admit(ctx: ApiContext, key: str) -> None:
    """SEBI's per-exchange order rate, before anything reaches the broker."""
    gate = ctx.node.gate
    if gate is None:
        return
    try:
        await gate.admit(key.partition(":")[0])
    except OrderRejected as e:
        raise ApiProblem(429, str(e), title="Order rate limit", rule=e.rule,
                         headers={"Retry-After": "1"}) from None  # fmt: skip


async def post_order(request: web.Request) -> web.Response:
    """Place an order once per ``Idempotency-Key``, however often the request is retried."""
    ctx = request.app[API_CONTEXT]
    body = await read_body(request, OrderBody, read_timeout=ctx.body_timeout)
    idem_key = request.headers.get(IDEMPOTENCY_HEADER)
    if idem_key is None or not IDEMPOTENCY_PATTERN.match(idem_key):
        raise ApiProblem(400, f"an order needs an {IDEMPOTENCY_HEADER} header (1-128 letters, "
                              "digits or _.:-), new for each new order and the same on a retry, "
                              "so that a retried request never places the order twice")
    actor = request_actor(request)
    fingerprint = hashlib.sha256(body.model_dump_json().encode()).hexdigest()

    async def attempt(tag: str) -> tuple[Outcome, bool]:
        order_request = replace(body.to_request(), tag=body.tag or tag)
        if ctx.node.market_protection is not None:
            order_request = with_market_protection(order_request, ctx.node.market_protection)
        started = time.perf_counter()
        try:
            await _admit(ctx, order_request.key)
            order = await ctx.trading.submit_order(order_request)
        except ApiProblem as p:
            return _problem_outcome(p), p.status != 429  # a rate refusal may be retried
        except OrderValidationError as e:
            return _problem_outcome(ApiProblem(
                422, e.message, errors=[{"field": e.field, "message": e.message,
                                         "type": "order"}])), True  # fmt: skip
        except OrderRejected as e:
            if _ip_not_allowed(e):
                return _problem_outcome(broker_problem(ctx, e, "order")), True
            return _problem_outcome(ApiProblem(
                409, str(e), title="Order refused by a risk rule", rule=e.rule)), True
        except BrokerError as e:
            # Not final: the broker may have the order. A retry looks it up by its tag.
            return _problem_outcome(broker_problem(ctx, e, "order")), False
        ctx.metrics.order_path_observer("api")(time.perf_counter() - started)
        ctx.audit(
            "api.order_placed", actor,
            {"order_id": order.order_id, "key": order.key, "side": order.side.value,
             "quantity": order.quantity, "status": order.status.value},
        )  # fmt: skip
        return Outcome(201, OrderOut.of(order).model_dump_json()), True

    async def recover(tag: str) -> Outcome | None:
        found = await ctx.trading.order_by_tag(body.tag or tag)
        return None if found is None else Outcome(201, OrderOut.of(found).model_dump_json())

    try:
        outcome, replayed = await ctx.node.idempotency.execute(
            actor, idem_key, fingerprint, attempt, recover)
    except IdempotencyConflict as e:
        raise ApiProblem(422, str(e), title="Idempotency-Key reused") from None
    except BrokerError as e:  # the look-up of an unknown outcome failed: still unknown
        raise ApiProblem(502, f"the order's outcome is not known yet ({e}); retry with the "
                              "same Idempotency-Key") from None  # fmt: skip
    content_type = "application/json" if outcome.status < 400 else PROBLEM_TYPE
    return web.Response(status=outcome.status, text=outcome.body, content_type=content_type,
                        headers={REPLAYED_HEADER: "true" if replayed else "false"})


async def patch_order(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    order_id = request.match_info["order_id"]
    body = await read_body(request, OrderChangeBody, read_timeout=ctx.body_timeout)
    if body.empty:
        raise ApiProblem(422, "nothing to change: give quantity, price, trigger_price or "
                              "order_type")  # fmt: skip
    known = ctx.trading.order_detail(order_id)
    if known is None:
        raise ApiProblem(404, f"no order {order_id!r}")
    await _admit(ctx, known.key)
    try:
        order = await ctx.trading.modify_order(order_id, body.to_change())
    except OrderNotFound:
        raise ApiProblem(404, f"no order {order_id!r}") from None
    except OrderValidationError as e:
        raise ApiProblem(
            422, e.message, errors=[{"field": e.field, "message": e.message, "type": "order"}]
        ) from None
    except OrderRejected as e:
        if _ip_not_allowed(e):
            raise broker_problem(ctx, e, "modification") from None
        raise ApiProblem(409, str(e), title="Modification refused", rule=e.rule) from None
    except BrokerError as e:
        raise ApiProblem(409, f"order {order_id!r} cannot be modified: {e}") from None
    ctx.audit("api.order_modified", request_actor(request),
              {"order_id": order_id, **body.model_dump(exclude_none=True)})  # fmt: skip
    return json_response(OrderOut.of(order))


async def delete_order(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    order_id = request.match_info["order_id"]
    known = ctx.trading.order_detail(order_id)
    if known is not None:
        await _admit(ctx, known.key)
    try:
        order = await ctx.trading.cancel_order(order_id)
    except OrderNotFound:
        raise ApiProblem(404, f"no order {order_id!r}") from None
    except BrokerError as e:
        if _ip_not_allowed(e):
            raise broker_problem(ctx, e, "cancellation") from None
        raise ApiProblem(409, f"order {order_id!r} cannot be cancelled: {e}") from None
    ctx.audit("api.order_cancelled", request_actor(request), {"order_id": order_id})
    return json_response(OrderOut.of(order))


async def post_killswitch(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    body = await read_body(request, KillSwitchBody, read_timeout=ctx.body_timeout, optional=True)
    actor = request_actor(request)
    report = (
        await ctx.killswitch.activate(body.square_off, actor=actor, reason=body.reason)
    ).summary()
    if ctx.node.events is not None:
        ctx.node.events.killswitch(actor, {"square_off": body.square_off,
                                           "reason": body.reason, **_plain(report)})
    return json_response(
        KillSwitchOut(
            mode="risk",
            halted=report.get("state") == "HALTED",
            cancelled=list(report.get("cancelled", [])),
            failed=list(report.get("failed", [])),
            closed=list(report.get("closed", [])),
        )
    )


def _plain(report: dict[str, Any]) -> dict[str, Any]:
    """The kill report as JSON-safe values for the stream."""
    return json.loads(json.dumps(report, default=str))  # type: ignore[no-any-return]


async def get_whoami(request: web.Request) -> web.Response:
    key = request[API_KEY]
    return json_response(KeyInfoOut(name=key.name, scopes=sorted(s.value for s in key.scopes)))


async def post_resume(request: web.Request) -> web.Response:
    """Leave HALTED on a person's decision (the kill switch or a loss limit stopped trading)."""
    ctx = request.app[API_CONTEXT]
    body = await read_body(request, ResumeBody, read_timeout=ctx.body_timeout)
    state = ctx.trading_state
    if state is None:
        raise ApiProblem(409, "this server has no trading state to resume")
    actor = request_actor(request)
    try:
        entered = state.resume(actor, body.reason, TradingState(body.to))
    except StateTransitionError as e:
        raise ApiProblem(409, str(e), title="Not halted") from None
    except ValueError as e:
        raise ApiProblem(422, str(e)) from None
    ctx.audit("api.killswitch_resumed", actor,
              {"reason": body.reason, "requested": body.to, "state": entered.value})
    if ctx.node.events is not None:
        ctx.node.events.check_trading_state()
    return json_response(TradingStateOut(state=entered.value, reason=state.state_reason))


ORDER_ERRORS = (400, 401, 403, 408, 409, 413, 415, 422, 429, 502)

API_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/v1/positions", get_positions, "listPositions", "Open positions",
             scope=Scope.READ, response=PositionList, errors=(401, 403, 429), tags=("read",)),
    Endpoint("GET", "/v1/orders", get_orders, "listOrders", "Orders of the session, newest first",
             scope=Scope.READ, response=OrderList, errors=(401, 403, 429), tags=("read",)),
    Endpoint("GET", "/v1/funds", get_funds, "getFunds", "Cash and margin", scope=Scope.READ,
             response=FundsOut, errors=(401, 403, 429, 502, 503), tags=("read",)),
    Endpoint("POST", "/v1/orders", post_order, "placeOrder",
             "Place an order (validated and risk-checked like a ticket order), once per "
             "Idempotency-Key: a retry returns the first answer", scope=Scope.TRADE,
             body=OrderBody, response=OrderOut, success=201, errors=ORDER_ERRORS,
             tags=("trade",), params=(Param(
                 IDEMPOTENCY_HEADER, "header", "new for each order, the same on a retry",
                 required=True, pattern=IDEMPOTENCY_PATTERN.pattern),)),
    Endpoint("PATCH", "/v1/orders/{order_id}", patch_order, "modifyOrder",
             "Modify a working order (validated and risk-checked again)", scope=Scope.TRADE,
             body=OrderChangeBody, response=OrderOut, errors=(*ORDER_ERRORS, 404),
             tags=("trade",)),
    Endpoint("DELETE", "/v1/orders/{order_id}", delete_order, "cancelOrder", "Cancel an order",
             scope=Scope.TRADE, response=OrderOut, errors=(401, 403, 404, 409, 429),
             tags=("trade",)),
    Endpoint("POST", "/v1/killswitch", post_killswitch, "killSwitch",
             "Halt trading, cancel all open orders, optionally square off", scope=Scope.TRADE,
             body=KillSwitchBody, body_optional=True, response=KillSwitchOut,
             errors=(400, 401, 403, 408, 409, 413, 415, 422, 429), tags=("trade",)),
    Endpoint("POST", "/v1/killswitch/resume", post_resume, "resumeTrading",
             "Leave HALTED after the kill switch or a loss limit (audited; ACTIVE, or REDUCING "
             "while a loss limit is still crossed)", scope=Scope.TRADE, body=ResumeBody,
             response=TradingStateOut, errors=(400, 401, 403, 408, 409, 413, 415, 422, 429),
             tags=("trade",)),
    Endpoint("POST", "/v1/session/{broker}", post_session, "handOverSession",
             "Hand the node the day's broker access token after the desktop's login (stored "
             "in the node's vault; audited, never logged)", scope=Scope.TRADE,
             body=SessionBody, response=SessionOut,
             errors=(400, 401, 403, 404, 408, 409, 413, 415, 422, 429), tags=("trade",)),
    Endpoint("GET", "/v1/whoami", get_whoami, "whoAmI",
             "The calling API key's name and scopes (a desktop pairing with the node checks "
             "that its key may trade)", scope=Scope.READ, response=KeyInfoOut,
             errors=(401, 403, 429), tags=("read",)),
    Endpoint("GET", "/v1/stream", get_stream, "stream",
             "WebSocket (subprotocol dalal.stream.v1): hello, then a snapshot or the events "
             "after ?since=SEQ&epoch=EPOCH, then every order, fill, position, funds, trading "
             "state and kill-switch event with consecutive sequence numbers",
             scope=Scope.READ, websocket=True, success=101, errors=(400, 401, 403, 409, 429),
             tags=("read",), params=(
                 Param("since", "query", "the last sequence number seen", kind="integer"),
                 Param("epoch", "query", "the epoch of the hello that seq belongs to",
                       pattern=r"^[0-9a-f]{16}$"),
                 Param("Sec-WebSocket-Protocol", "header", "offer dalal.stream.v1"),
             )),
]  # fmt: skip

API_ENDPOINTS += DEPLOYMENT_ENDPOINTS
API_ENDPOINTS += GTT_ENDPOINTS
