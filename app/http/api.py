"""The ``/v1`` control API: positions, orders and funds to read; orders and the kill switch.

Handlers are thin: they validate the body, call the same service facade the desktop uses (so
an API order goes through exactly the validation and risk checks a ticket order does), and
turn the services' refusals into problem documents that name the field or the rule.
"""

from __future__ import annotations

import time

from aiohttp import web

from app.http.context import (
    API_CONTEXT,
    ApiContext,
    KillSwitchPort,
    TradingFacade,
    json_response,
    read_body,
    request_actor,
)
from app.http.deployment import DEPLOYMENT_ENDPOINTS
from app.http.endpoints import Endpoint
from app.http.problems import ApiProblem
from app.http.schemas import (
    FundsOut,
    KillSwitchBody,
    KillSwitchOut,
    OrderBody,
    OrderList,
    OrderOut,
    PositionList,
    PositionOut,
)
from services.apikeys import Scope
from services.broker import BrokerError, OrderNotFound, OrderRejected
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


async def post_order(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    body = await read_body(request, OrderBody, read_timeout=ctx.body_timeout)
    order_request = body.to_request()
    started = time.perf_counter()
    try:
        order = await ctx.trading.submit_order(order_request)
    except OrderValidationError as e:
        raise ApiProblem(
            422, e.message, errors=[{"field": e.field, "message": e.message, "type": "order"}]
        ) from None
    except OrderRejected as e:
        raise ApiProblem(409, str(e), title="Order refused by a risk rule", rule=e.rule) from None
    except BrokerError as e:
        raise ApiProblem(502, f"the broker did not take the order: {e}") from None
    ctx.metrics.order_path_observer("api")(time.perf_counter() - started)
    ctx.audit(
        "api.order_placed",
        request_actor(request),
        {"order_id": order.order_id, "key": order.key, "side": order.side.value,
         "quantity": order.quantity, "status": order.status.value},
    )  # fmt: skip
    return json_response(OrderOut.of(order), status=201)


async def delete_order(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    order_id = request.match_info["order_id"]
    try:
        order = await ctx.trading.cancel_order(order_id)
    except OrderNotFound:
        raise ApiProblem(404, f"no order {order_id!r}") from None
    except BrokerError as e:
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
    return json_response(
        KillSwitchOut(
            mode="risk",
            halted=report.get("state") == "HALTED",
            cancelled=list(report.get("cancelled", [])),
            failed=list(report.get("failed", [])),
            closed=list(report.get("closed", [])),
        )
    )


ORDER_ERRORS = (400, 401, 403, 408, 409, 413, 415, 422, 429, 502)

API_ENDPOINTS: list[Endpoint] = [
    Endpoint("GET", "/v1/positions", get_positions, "listPositions", "Open positions",
             scope=Scope.READ, response=PositionList, errors=(401, 403, 429), tags=("read",)),
    Endpoint("GET", "/v1/orders", get_orders, "listOrders", "Orders of the session, newest first",
             scope=Scope.READ, response=OrderList, errors=(401, 403, 429), tags=("read",)),
    Endpoint("GET", "/v1/funds", get_funds, "getFunds", "Cash and margin", scope=Scope.READ,
             response=FundsOut, errors=(401, 403, 429, 502, 503), tags=("read",)),
    Endpoint("POST", "/v1/orders", post_order, "placeOrder",
             "Place an order (validated and risk-checked like a ticket order)",
             scope=Scope.TRADE, body=OrderBody, response=OrderOut, success=201,
             errors=ORDER_ERRORS, tags=("trade",)),
    Endpoint("DELETE", "/v1/orders/{order_id}", delete_order, "cancelOrder", "Cancel an order",
             scope=Scope.TRADE, response=OrderOut, errors=(401, 403, 404, 409, 429),
             tags=("trade",)),
    Endpoint("POST", "/v1/killswitch", post_killswitch, "killSwitch",
             "Halt trading, cancel all open orders, optionally square off", scope=Scope.TRADE,
             body=KillSwitchBody, body_optional=True, response=KillSwitchOut,
             errors=(400, 401, 403, 408, 409, 413, 415, 422, 429), tags=("trade",)),
]  # fmt: skip

API_ENDPOINTS += DEPLOYMENT_ENDPOINTS
