"""The ``/v1`` control API: positions, orders and funds to read; orders and the kill switch.

Handlers are thin: they validate the body, call the same service facade the desktop uses (so
an API order goes through exactly the validation and risk checks a ticket order does), and
turn the services' refusals into problem documents that name the field or the rule.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.http.auth import API_KEY, AuditFn, log_audit
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
from services.domain import Funds, Order, OrderRequest, Position
from services.metrics import Metrics
from services.validation import OrderValidationError

if TYPE_CHECKING:
    from app.models_runtime import ModelsRuntime

M = TypeVar("M", bound=BaseModel)

BODY_TIMEOUT = 10.0


class TradingFacade(Protocol):
    """The part of ``app.wiring.AppServices`` the API uses."""

    def order_list(self) -> list[Order]: ...
    def position_list(self) -> list[Position]: ...
    def funds(self) -> Funds | None: ...
    async def submit_order(self, request: OrderRequest) -> Order: ...
    async def cancel_order(self, order_id: str) -> Order: ...


class KillReportLike(Protocol):
    def summary(self) -> dict[str, Any]: ...


class KillSwitchPort(Protocol):
    """``services.risk.KillSwitch``: halt, cancel all, optionally flatten."""

    async def activate(
        self, square_off: bool, *, actor: str = ..., reason: str = ...
    ) -> KillReportLike: ...


@dataclass
class ApiContext:
    trading: TradingFacade
    metrics: Metrics
    killswitch: KillSwitchPort
    audit: AuditFn = log_audit
    body_timeout: float = BODY_TIMEOUT
    # Asks the broker when the order manager has no funds snapshot yet (none is published
    # until the first order or fill on some brokers).
    fetch_funds: Callable[[], Awaitable[Funds]] | None = None
    # The embedded models (``/v1/deployment``); None without a profile database.
    models: ModelsRuntime | None = None


API_CONTEXT: web.AppKey[ApiContext] = web.AppKey("dalal_api_context", ApiContext)


# -- bodies -------------------------------------------------------------------------------


def field_errors(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]) or "(body)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False)
    ]


async def read_body(
    request: web.Request, model: type[M], *, read_timeout: float, optional: bool = False
) -> M:
    """Read and validate a JSON body: 415, 408, 413 (from aiohttp), 400 or 422 on failure."""
    if optional and not request.body_exists:
        return model()
    if request.content_type != "application/json":
        raise ApiProblem(415, "send the body as application/json")
    try:
        async with asyncio.timeout(read_timeout):
            raw = await request.read()
    except TimeoutError:
        raise ApiProblem(408, "the request body arrived too slowly", close=True) from None
    if optional and not raw.strip():
        return model()
    try:
        return model.model_validate_json(raw)
    except ValidationError as e:
        errors = field_errors(e)
        if any(err["type"] == "json_invalid" for err in errors):
            raise ApiProblem(400, "the body is not valid JSON") from None
        raise ApiProblem(422, "the body does not match the schema", errors=errors) from None


def _json(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=model.model_dump_json().encode(), content_type="application/json"
    )


def _actor(request: web.Request) -> str:
    return f"apikey:{request[API_KEY].key_id}"


# -- handlers -----------------------------------------------------------------------------


async def get_positions(request: web.Request) -> web.Response:
    trading = request.app[API_CONTEXT].trading
    return _json(PositionList(positions=[PositionOut.of(p) for p in trading.position_list()]))


async def get_orders(request: web.Request) -> web.Response:
    trading = request.app[API_CONTEXT].trading
    return _json(OrderList(orders=[OrderOut.of(o) for o in trading.order_list()]))


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
    return _json(FundsOut.of(funds))


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
        _actor(request),
        {"order_id": order.order_id, "key": order.key, "side": order.side.value,
         "quantity": order.quantity, "status": order.status.value},
    )  # fmt: skip
    return _json(OrderOut.of(order), status=201)


async def delete_order(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    order_id = request.match_info["order_id"]
    try:
        order = await ctx.trading.cancel_order(order_id)
    except OrderNotFound:
        raise ApiProblem(404, f"no order {order_id!r}") from None
    except BrokerError as e:
        raise ApiProblem(409, f"order {order_id!r} cannot be cancelled: {e}") from None
    ctx.audit("api.order_cancelled", _actor(request), {"order_id": order_id})
    return _json(OrderOut.of(order))


async def post_killswitch(request: web.Request) -> web.Response:
    ctx = request.app[API_CONTEXT]
    body = await read_body(request, KillSwitchBody, read_timeout=ctx.body_timeout, optional=True)
    actor = _actor(request)
    report = (
        await ctx.killswitch.activate(body.square_off, actor=actor, reason=body.reason)
    ).summary()
    return _json(
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

# The model deployment API (app/http/deployment.py) shares this module's helpers.
from app.http.deployment import DEPLOYMENT_ENDPOINTS  # noqa: E402

API_ENDPOINTS += DEPLOYMENT_ENDPOINTS
