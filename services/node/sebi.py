"""SEBI's retail-algo controls that the node applies to every order it sends.

* **Order rate.** At most 10 orders a second per exchange for a strategy that is not
  registered with the exchange (each broker enforces it and answers the 11th with an error).
  The node keeps under it itself: the 11th order in a second either waits for the window to
  move or is refused at once with a message that says why, as the operator chose.
* **Market protection.** Brokers refuse MARKET and SL-M orders without it (Kite rejects a
  protection of 0); an order that carries none gets the node's configured percentage.
* **Egress.** The address the broker sees must be the one the trader registered, so the node
  can pin the address family its broker connections use, and says which address to register
  when a broker answers "IP not allowed".
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal
from typing import Literal

from services.broker import OrderRejected
from services.domain import MarketProtection, OrderRequest, OrderType

UNREGISTERED_RATE = 10
RATE_RULE = "sebi_order_rate"


class OrderRateGate:
    """A sliding one-second window per exchange, over place, modify and cancel."""

    def __init__(
        self,
        per_second: int = UNREGISTERED_RATE,
        *,
        mode: Literal["wait", "refuse"] = "wait",
        window: float = 1.0,
        monotonic: Callable[[], float] = time.monotonic,
        max_wait: float = 5.0,
    ) -> None:
        if per_second < 1:
            raise ValueError("the order rate must be at least 1 a second")
        self.per_second = per_second
        self.mode = mode
        self.window = window
        self.max_wait = max_wait
        self._now = monotonic
        self._sent: dict[str, deque[float]] = {}
        self.waited = 0
        self.refused = 0

    def _trim(self, sent: deque[float], now: float) -> None:
        while sent and now - sent[0] >= self.window:
            sent.popleft()

    async def admit(self, exchange: str) -> float:
        """Take a slot for one order on ``exchange``; return the seconds waited for it.

        Raises ``OrderRejected`` (rule ``sebi_order_rate``) in refuse mode, or when waiting
        would take longer than ``max_wait`` (a queue that long is a runaway strategy).
        """
        sent = self._sent.setdefault(exchange, deque())
        waited = 0.0
        while True:
            now = self._now()
            self._trim(sent, now)
            if len(sent) < self.per_second:
                sent.append(now)
                return waited
            delay = self.window - (now - sent[0])
            if self.mode == "refuse" or waited + delay > self.max_wait:
                self.refused += 1
                raise OrderRejected(
                    f"{exchange}: {self.per_second} orders in the last second already; SEBI "
                    f"allows {self.per_second} a second for a strategy not registered with "
                    "the exchange. Send it again in a moment.",
                    rule=RATE_RULE,
                )
            self.waited += 1
            await asyncio.sleep(max(delay, 0.001))
            waited += delay


def with_market_protection(request: OrderRequest, percent: Decimal) -> OrderRequest:
    """Give a MARKET or SL-M order the node's market protection if it carries none."""
    if request.market_protection is not None or request.order_type not in (
        OrderType.MARKET, OrderType.SL_M,
    ):  # fmt: skip
        return request
    return replace(request, market_protection=MarketProtection(percent))


def ip_not_allowed_message(broker: str, registered: str | None, egress: str | None) -> str:
    """What to tell the trader when the broker refused the node's address."""
    seen = f" The node's address is {egress}." if egress else ""
    known = (
        f" The address registered in the node's settings is {registered}: check that the "
        "broker has that one, and that the node leaves by it (node.egress_family)."
        if registered
        else ""
    )
    return (
        f"{broker} refused the order: this IP is not registered for API orders.{seen} "
        f"Register it as your static IP in {broker}'s developer console (it can be changed "
        f"once a week).{known}"
    )


def apply_algo_id(execution: object, algo_id: str) -> str:
    """Give the broker adapter the exchange's algo id in its own form; say how it travels.

    Each adapter declares ``algo_form`` (Kite: the ``algo_id`` parameter; Upstox: the
    ``X-Algo-Name`` header). A broker whose API has no such field (Angel One, Breeze) declares
    ``None``: the id cannot be sent, the broker stamps its generic algo id, and the order is
    known by its tag (``tag_field``). The returned sentence goes to the node's log.
    """
    name = getattr(execution, "name", type(execution).__name__)
    if not hasattr(execution, "algo_form"):
        return f"algo id {algo_id} not sent: the {name} venue takes none"
    form = getattr(execution, "algo_form")  # noqa: B009 (declared per adapter, not typed)
    if form is None:
        tag = getattr(execution, "tag_field", "tag")
        return (f"algo id {algo_id} not sent: {name}'s API has no field for it (the broker "
                f"stamps its generic algo id); each order carries its tag as {tag}")  # fmt: skip
    setattr(execution, "algo_id", algo_id)  # noqa: B010
    return f"algo id {algo_id} sent as {form}"
