"""``ExecutionClient`` over the node's HTTP API: orders leave from the node's static IP.

Every order is sent with ``Idempotency-Key`` = its tag, so a send whose answer was lost (the
node restarted, the link dropped mid-request) is simply sent again: the node answers with the
first result and never places twice. When the node cannot be reached at all within the
attempts, the outcome is unknown (``OutcomeUnknown``); it resolves by the same key, or by the
tag in the node's order book, once the node is back.

Before sending, the client asks its stream whether the node is reachable: when it is not, a
new order is refused at once with "orders unavailable", and market data, which does not go
through the node, keeps streaming.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import aiohttp

from services.broker import BrokerError, OrderChange, OrderNotFound, OrderRejected
from services.brokers.errors import (
    BrokerUnavailable,
    InvalidInput,
    IpNotAllowed,
    OutcomeUnknown,
    PermissionDenied,
    RateLimited,
)
from services.brokers.node.pinning import ssl_for
from services.brokers.ports import BrokerLimits
from services.domain import Fill, Funds, Holding, Order, OrderRequest, Position
from services.node.wire import (
    WireError,
    decode_funds,
    decode_order,
    decode_position,
    encode_change,
    encode_request,
)

log = logging.getLogger(__name__)

# The node forwards the tag to the real broker; Kite's 20 alphanumerics is the tightest.
NODE_LIMITS = BrokerLimits(tag_max_length=20, order_windows=())
ATTEMPTS = 3
TIMEOUT_SECONDS = 5.0
BACKOFF_SECONDS = (0.2, 0.5, 1.0)


class _Unreachable(Exception):
    pass


class NodeExecution:
    name = "node"
    limits = NODE_LIMITS
    # The node writes the idempotency claim and the order's intent with synchronous commits
    # before its broker sees the order, so the desktop's order manager queues its own copy
    # of the intent instead of waiting for a second fsync on this side (services.orders).
    journals_intents = True

    def __init__(
        self,
        url: str,
        api_key: str,
        *,
        fingerprint: str | None = None,
        reachable: Callable[[], str | None] = lambda: None,
        fills: Callable[[], list[Fill]] = list,
        timeout: float = TIMEOUT_SECONDS,
        attempts: int = ATTEMPTS,
    ) -> None:
        self.url = url.rstrip("/")
        self._key = api_key
        self._ssl = ssl_for(self.url, fingerprint)
        self._unreachable_reason = reachable
        self._fills = fills
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._attempts = attempts
        self._session: aiohttp.ClientSession | None = None

    def __repr__(self) -> str:  # never the key
        return f"NodeExecution({self.url!r})"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                headers={"Authorization": f"Bearer {self._key}"},
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=16),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _call(
        self, method: str, path: str, *, json: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any]:
        try:
            async with self._http().request(method, self.url + path, json=json,
                                            headers=headers) as r:  # fmt: skip
                body = await r.json(content_type=None) if r.content_length != 0 else None
                return r.status, body
        except (aiohttp.ClientConnectionError, TimeoutError, aiohttp.ServerFingerprintMismatch,
                ValueError) as e:  # fmt: skip
            if isinstance(e, aiohttp.ServerFingerprintMismatch):
                raise PermissionDenied(
                    f"the order node at {self.url} presented a different TLS certificate than "
                    "the one pinned: refusing to talk to it (re-pin only if you replaced it)"
                ) from None
            raise _Unreachable(f"{type(e).__name__}: {e}") from None

    def _refuse_if_down(self) -> None:
        reason = self._unreachable_reason()
        if reason is not None:
            raise BrokerUnavailable(f"orders unavailable: {reason}")

    # -- orders ----------------------------------------------------------------------------
    async def place_order(self, request: OrderRequest) -> Order:
        self._refuse_if_down()
        if request.tag is None:
            raise InvalidInput("an order to the node needs its tag (the idempotency key)")
        body = encode_request(request)
        headers = {"Idempotency-Key": request.tag}
        last = ""
        for attempt in range(self._attempts):
            try:
                status, answer = await self._call("POST", "/v1/orders", json=body,
                                                  headers=headers)  # fmt: skip
            except _Unreachable as e:
                last = str(e)
                await asyncio.sleep(BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)])
                continue
            if status == 502 and attempt + 1 < self._attempts:
                last = detail_of(answer)
                continue  # the broker's answer was lost at the node: the same key resolves it
            return self._order_or_raise(status, answer, "order")
        raise OutcomeUnknown(
            f"orders unavailable: the order node at {self.url} did not answer ({last}); "
            f"order {request.tag} may or may not have been placed: it is resolved by its "
            "idempotency key when the node is back"
        )

    async def modify_order(self, order_id: str, change: OrderChange) -> Order:
        self._refuse_if_down()
        status, answer = await self.request_once("PATCH", f"/v1/orders/{order_id}",
                                                 json=encode_change(change))  # fmt: skip
        return self._order_or_raise(status, answer, "modification")

    async def cancel_order(self, order_id: str) -> Order:
        self._refuse_if_down()
        status, answer = await self.request_once("DELETE", f"/v1/orders/{order_id}")
        return self._order_or_raise(status, answer, "cancellation")

    async def request_once(self, method: str, path: str, *, json: Any = None) -> tuple[int, Any]:
        """One request whose loss leaves its outcome unknown (OutcomeUnknown), no retry."""
        try:
            return await self._call(method, path, json=json)
        except _Unreachable as e:
            raise OutcomeUnknown(
                f"orders unavailable: the order node at {self.url} did not answer ({e}); "
                "check the order book when it is back"
            ) from None

    def _order_or_raise(self, status: int, answer: Any, what: str) -> Order:
        if status in (200, 201):
            try:
                return decode_order(answer)
            except WireError as e:
                raise BrokerError(f"the order node sent an order this terminal cannot read: "
                                  f"{e}") from None  # fmt: skip
        detail = detail_of(answer)
        rule = answer.get("rule") if isinstance(answer, dict) else None
        if status == 404:
            raise OrderNotFound(detail)
        if status in (401, 403):
            raise PermissionDenied(f"the order node refused the API key: {detail} (it needs "
                                   "a trade-scoped key: dalal apikey create on the node)")
        if status == 409 and rule in ("ip_not_allowed", "broker-static-ip"):
            raise IpNotAllowed(detail)
        if status == 409:
            raise OrderRejected(detail, rule=str(rule or "node"))
        if status == 422:
            raise InvalidInput(detail)
        if status == 429:
            if rule:
                raise OrderRejected(detail, rule=str(rule))
            raise RateLimited(detail, retry_after=1.0)
        if status == 502:
            raise OutcomeUnknown(f"the {what}'s outcome is not known yet: {detail}")
        raise BrokerUnavailable(f"the order node answered {status}: {detail}")

    # -- snapshots -------------------------------------------------------------------------
    async def get_json(self, path: str) -> Any:
        """GET a snapshot; BrokerUnavailable when the node cannot answer it."""
        try:
            status, body = await self._call("GET", path)
        except _Unreachable as e:
            raise BrokerUnavailable(f"the order node at {self.url} is not reachable: {e}") from None
        if status != 200:
            raise BrokerUnavailable(f"the order node answered {status} for {path}: "
                                    f"{detail_of(body)}")  # fmt: skip
        return body

    async def orders(self) -> list[Order]:
        return [decode_order(o) for o in (await self.get_json("/v1/orders"))["orders"]]

    async def order_status(self, order_id: str) -> Order:
        for order in await self.orders():
            if order.order_id == order_id:
                return order
        raise OrderNotFound(f"the order node has no order {order_id}")

    async def order_by_tag(self, tag: str) -> Order | None:
        return next((o for o in await self.orders() if o.request.tag == tag), None)

    async def fills(self) -> list[Fill]:
        return self._fills()  # the node streams fills; it has no fills endpoint

    async def positions(self) -> list[Position]:
        return [decode_position(p) for p in (await self.get_json("/v1/positions"))["positions"]]

    async def holdings(self) -> list[Holding]:
        return []  # holdings are read from the broker by the desktop, not through the node

    async def funds(self) -> Funds:
        return decode_funds(await self.get_json("/v1/funds"))

    async def key_info(self) -> tuple[str, frozenset[str]]:
        """The name and scopes the node knows this client's key by (``GET /v1/whoami``)."""
        try:
            status, body = await self._call("GET", "/v1/whoami")
        except _Unreachable as e:
            raise BrokerUnavailable(f"the order node at {self.url} is not reachable: {e}") from None
        if status == 401:
            raise PermissionDenied("the order node refused this API key (wrong, revoked or "
                                   "expired)")  # fmt: skip
        if status != 200 or not isinstance(body, dict):
            raise BrokerUnavailable(f"the order node answered {status} for /v1/whoami: "
                                    f"{detail_of(body)}")  # fmt: skip
        return str(body.get("name", "")), frozenset(str(s) for s in body.get("scopes") or ())

    # -- the node's kill switch --------------------------------------------------------------
    async def kill(self, *, square_off: bool, reason: str) -> dict[str, Any]:
        """Halt the node, cancel its open orders and optionally flatten (its kill switch)."""
        kill = {"square_off": square_off, "reason": reason[:200]}
        status, body = await self.request_once("POST", "/v1/killswitch", json=kill)
        if status != 200:
            raise BrokerError(f"the order node did not take the kill switch: {detail_of(body)}")
        return dict(body)

    async def hand_over_session(self, broker: str, access_token: str) -> None:
        """Give the node the day's broker token after this desktop's login."""
        status, body = await self.request_once("POST", f"/v1/session/{broker}",
                                               json={"access_token": access_token})  # fmt: skip
        if status != 200:
            raise BrokerError(f"the order node did not take the {broker} token: "
                              f"{detail_of(body)}")  # fmt: skip

    async def resume(self, reason: str, to: str = "ACTIVE") -> str:
        """Leave HALTED on the node; return the state it entered."""
        status, body = await self.request_once("POST", "/v1/killswitch/resume",
                                               json={"reason": reason[:200], "to": to})  # fmt: skip
        if status != 200:
            raise BrokerError(f"the order node did not resume: {detail_of(body)}")
        return str(body["state"])


def detail_of(answer: Any) -> str:
    """The problem document's detail (its title, or the whole answer, without one)."""
    if isinstance(answer, dict):
        return str(answer.get("detail") or answer.get("title") or answer)
    return str(answer)

