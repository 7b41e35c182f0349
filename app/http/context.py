"""What every ``/v1`` handler shares: the services it drives and the request plumbing.

The trading routes (``app.http.api``) and the model routes (``app.http.deployment``) both read
their context, bodies and caller from here, so neither has to import the other.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from app.http.auth import API_KEY, AuditFn, log_audit
from app.http.problems import ApiProblem
from services.broker import BrokerError, OrderChange
from services.brokers.errors import IpNotAllowed
from services.domain import Funds, Order, OrderRequest, Position
from services.gtt import Gtt, LegChange
from services.metrics import Metrics
from services.node.idempotency import IdempotentOrders, MemoryLedger
from services.node.sebi import ip_not_allowed_message
from services.risk import TradingState

if TYPE_CHECKING:
    from app.models_runtime import ModelsRuntime
    from services.node.events import EventJournal
    from services.node.sebi import OrderRateGate

M = TypeVar("M", bound=BaseModel)

BODY_TIMEOUT = 10.0


class TradingFacade(Protocol):
    """The part of ``app.wiring.AppServices`` the API uses."""

    def order_list(self) -> list[Order]: ...
    def position_list(self) -> list[Position]: ...
    def funds(self) -> Funds | None: ...
    async def submit_order(self, request: OrderRequest) -> Order: ...
    async def modify_order(self, order_id: str, change: OrderChange) -> Order: ...
    async def cancel_order(self, order_id: str) -> Order: ...
    def order_detail(self, order_id: str) -> Order | None: ...
    async def order_by_tag(self, tag: str) -> Order | None: ...


class GttFacade(Protocol):
    """The GTT part of ``app.wiring.AppServices``."""

    def gtt_held_at(self) -> str | None: ...
    def gtt_offers_oco(self) -> bool: ...
    async def gtt_list(self) -> list[Gtt]: ...
    async def place_gtt_single(self, trigger: Decimal, order: OrderRequest) -> Gtt: ...
    async def place_gtt_oco(
        self, stop_trigger: Decimal, stop_order: OrderRequest, target_trigger: Decimal,
        target_order: OrderRequest,
    ) -> Gtt: ...  # fmt: skip
    async def modify_gtt(self, gtt_id: int | str, changes: list[LegChange]) -> Gtt: ...
    async def cancel_gtt(self, gtt_id: int | str) -> Gtt: ...


class KillReportLike(Protocol):
    def summary(self) -> dict[str, Any]: ...


class KillSwitchPort(Protocol):
    """``services.risk.KillSwitch``: halt, cancel all, optionally flatten."""

    async def activate(
        self, square_off: bool, *, actor: str = ..., reason: str = ...
    ) -> KillReportLike: ...


class TradingStatePort(Protocol):
    """``services.risk.RiskEngine``: the state the kill switch sets and a person resumes."""

    @property
    def state(self) -> TradingState: ...
    @property
    def state_reason(self) -> str: ...
    def resume(self, actor: str, reason: str, to: TradingState = ...) -> TradingState: ...


@dataclass
class NodeControls:
    """What makes headless an order node: idempotent entry, SEBI's limits, the stream."""

    idempotency: IdempotentOrders = field(
        default_factory=lambda: IdempotentOrders(MemoryLedger()))
    gate: OrderRateGate | None = None
    market_protection: Decimal | None = None
    events: EventJournal | None = None
    # Where the node's broker connections leave from, for "IP not allowed" messages.
    registered_ip: str | None = None
    # The day's token from the desktop: stored in the vault and used at once.
    session_broker: str | None = None
    session_handover: Callable[[str], Awaitable[None]] | None = None


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
    trading_state: TradingStatePort | None = None
    node: NodeControls = field(default_factory=NodeControls)
    gtts: GttFacade | None = None  # /v1/gtts (app.http.gtt); None: not offered


API_CONTEXT: web.AppKey[ApiContext] = web.AppKey("dalal_api_context", ApiContext)


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


async def request_body(request: web.Request, model: type[M]) -> M:
    """``read_body`` with the context's body timeout."""
    return await read_body(request, model, read_timeout=request.app[API_CONTEXT].body_timeout)


def broker_problem(ctx: ApiContext, e: BrokerError, what: str) -> ApiProblem:
    """A broker's refusal as a problem; "IP not allowed" says which address to register."""
    if isinstance(e, IpNotAllowed):
        detail = ip_not_allowed_message(str(getattr(e, "broker", "") or "the broker"),
                                        ctx.node.registered_ip, None)
        return ApiProblem(409, f"{detail} ({e})", title="IP not allowed",
                          rule="ip_not_allowed")  # fmt: skip
    return ApiProblem(502, f"the broker did not take the {what}: {e}")


def json_response(model: BaseModel, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=model.model_dump_json().encode(), content_type="application/json"
    )


def request_actor(request: web.Request) -> str:
    """Who made the request, as the audit log names it (never the key's secret)."""
    return f"apikey:{request[API_KEY].key_id}"


def audit(request: web.Request, kind: str, details: dict[str, Any]) -> None:
    request.app[API_CONTEXT].audit(kind, request_actor(request), details)
