"""What makes a headless process a desktop's order node, built from the ``node`` settings.

Idempotent order entry on the profile database (or in memory without one), SEBI's order
rate per exchange and market protection, and the event journal behind ``/v1/stream``.
"""

from __future__ import annotations

import asyncio
import logging
from decimal import Decimal
from typing import Any

from app.http.context import NodeControls
from app.wiring import AppServices
from services.brokers.ports import TokenHandover
from services.node.events import EventJournal
from services.node.idempotency import IdempotentOrders, Ledger, MemoryLedger, SqlLedger
from services.node.sebi import OrderRateGate, apply_algo_id

log = logging.getLogger(__name__)

def trading_state_of(services: AppServices) -> dict[str, Any]:
    return {"state": services.risk.state.value, "reason": services.risk.state_reason}


def build_node_controls(services: AppServices) -> NodeControls:
    node = services.settings.node
    recorder = services.recorder
    ledger: Ledger = MemoryLedger()
    if recorder is not None:
        orders = services.orders

        def intent_follows() -> bool:
            """The order manager commits the intent durably here before the broker call."""
            return orders.journal is recorder and not getattr(
                orders.venue, "journals_intents", False)

        ledger = SqlLedger(recorder.db, intent_follows)
    idempotency = IdempotentOrders(ledger, recorder.durable if recorder is not None else None)
    rate = node.registered_rate_per_second if node.registered_strategy_id else (
        node.order_rate_per_second)
    events = EventJournal(
        services.bus, lambda: trading_state_of(services), now=services.clock.now
    )
    broker_name: str | None = None
    handover = None
    live = services.live
    execution = live.execution if live is not None else None
    if execution is not None and node.algo_id:
        log.info("SEBI: %s", apply_algo_id(execution, node.algo_id))
    session = live.session if live is not None else None
    if live is not None and isinstance(session, TokenHandover):
        taker, receiver = session, live
        broker_name = live.name

        async def handover(token: str) -> None:
            stored = await asyncio.to_thread(taker.adopt, token, services.clock.now())
            receiver.use_token(stored.access_token, stored.expires_at)

    return NodeControls(
        idempotency=idempotency,
        gate=OrderRateGate(rate, mode=node.rate_mode),
        market_protection=Decimal(node.market_protection_percent),
        events=events,
        registered_ip=node.registered_ip,
        session_broker=broker_name,
        session_handover=handover,
    )
