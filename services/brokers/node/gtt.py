"""``GttVenue`` over the order node's ``/v1/gtts``: GTTs that fire with the desktop closed.

Through a node, a GTT held by the desktop's own book would fire only while the desktop runs,
and a GTT placed at the broker from home breaks SEBI's static-IP rule. So the desktop's GTTs
live on the node, which keeps them where its venue does (at the broker, or in its own book)
and says which in ``held_at``: the panel shows "held at your order node (Zerodha)".
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.broker import BrokerError
from services.brokers.errors import (
    BrokerUnavailable,
    InvalidInput,
    IpNotAllowed,
    NotOffered,
    OutcomeUnknown,
    PermissionDenied,
)
from services.brokers.node.execution import NodeExecution, detail_of
from services.domain import OrderRequest
from services.gtt import Gtt, GttNotFound, LegChange, gtt_from_dict
from services.node.wire import encode_request

NODE_TITLE = "your order node"


class NodeGtt:
    """What the node last said about where it holds GTTs is kept for ``title`` and ``oco``,
    which the panel reads without a round trip; both are refreshed by every ``gtts()``."""

    def __init__(self, execution: NodeExecution) -> None:
        self._execution = execution
        self.title = NODE_TITLE
        self.oco = True  # until the node says otherwise (it refuses an OCO it cannot hold)

    async def gtts(self) -> list[Gtt]:
        body = await self._execution.get_json("/v1/gtts")
        try:
            held_at = body.get("held_at")
            self.title = NODE_TITLE if not held_at else f"{NODE_TITLE} ({held_at})"
            self.oco = bool(body.get("oco", True))
            return [gtt_from_dict(raw) for raw in body["gtts"]]
        except (AttributeError, KeyError, TypeError, ValueError) as e:
            raise BrokerError(f"the order node sent GTTs this terminal cannot read: {e}") from None

    async def place_single(
        self, trigger: Decimal, order: OrderRequest, last_price: Decimal
    ) -> Gtt:
        return await self._place([(trigger, order)])

    async def place_oco(
        self,
        stop_trigger: Decimal,
        stop_order: OrderRequest,
        target_trigger: Decimal,
        target_order: OrderRequest,
        last_price: Decimal,
    ) -> Gtt:
        return await self._place([(stop_trigger, stop_order), (target_trigger, target_order)])

    async def _place(self, legs: list[tuple[Decimal, OrderRequest]]) -> Gtt:
        body = {"legs": [{"trigger": str(t), "order": encode_request(o)} for t, o in legs]}
        status, answer = await self._execution.request_once("POST", "/v1/gtts", json=body)
        return self._gtt_or_raise(status, answer)

    async def modify(
        self, gtt_id: int | str, changes: list[LegChange], last_price: Decimal
    ) -> Gtt:
        """The node checks the move against its own last price (``changed_legs``)."""
        body = {"legs": [
            {"trigger": str(c.trigger), **({} if c.price is None else {"price": str(c.price)})}
            for c in changes
        ]}  # fmt: skip
        status, answer = await self._execution.request_once("PATCH", f"/v1/gtts/{gtt_id}",
                                                            json=body)  # fmt: skip
        return self._gtt_or_raise(status, answer)

    async def cancel(self, gtt_id: int | str) -> Gtt:
        status, answer = await self._execution.request_once("DELETE", f"/v1/gtts/{gtt_id}")
        return self._gtt_or_raise(status, answer)

    def _gtt_or_raise(self, status: int, answer: Any) -> Gtt:
        if status in (200, 201):
            try:
                return gtt_from_dict(answer)
            except (KeyError, TypeError, ValueError) as e:
                raise BrokerError(f"the order node sent a GTT this terminal cannot read: "
                                  f"{e}") from None  # fmt: skip
        detail = detail_of(answer)
        rule = answer.get("rule") if isinstance(answer, dict) else None
        if status in (401, 403):
            raise PermissionDenied(f"the order node refused the API key: {detail}")
        if status == 404:
            raise GttNotFound(detail)
        if status == 409 and rule == "ip_not_allowed":
            raise IpNotAllowed(detail)
        if status == 409 and rule == "not_offered":
            raise NotOffered(detail)
        if status in (409, 422):
            raise InvalidInput(detail)
        if status == 502:
            raise OutcomeUnknown(f"the GTT's outcome at the broker is not known: {detail}; "
                                 "list the GTTs before placing it again")  # fmt: skip
        raise BrokerUnavailable(f"the order node answered {status}: {detail}")


